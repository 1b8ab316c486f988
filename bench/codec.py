"""Codec throughput against a bare-lxml floor measured in the same run.

Run by hand from the repository root (not part of the test suite):

    .venv/bin/python bench/codec.py [--number N] [--repeat R] [--breakdown]

Two messages, each a realistic WP820 exchange: an Inform with 20 parameters and a GetParameterValuesResponse with 60.
For each, three timings against their floors, best of R repeats of N calls (``timeit``, in process CPU time), each
run alternating with its floor run:

* parse: ``codec.parse(data)``; its floor is a bare ``lxml.etree.fromstring(data)`` of the same bytes (a tree, no
  decoding, no checks);
* the parse ceiling (below), against the same floor;
* serialize: ``codec.serialize(envelope)``; its floor is a bare ``lxml.etree.tostring(tree)`` of an already-parsed
  tree of the same bytes (no tree building, no value formatting).

The ratio is codec throughput / floor throughput; the targets are 0.5 for both directions, and the exit status is 1
when a ratio misses its target.

Beside each parse, a *ceiling* is measured too: a decoder written for exactly that message and nothing else —
children taken by position, no checks, no leniency, no error handling, only the value types the message holds — on
the same lxml tree, producing the same Envelope. Any decoder built on lxml's element API that turns every value into
a typed object does at least this much work, so its ratio shows how much of the target is left for what a real codec
must do (refuse hostile input, accept what devices send, report errors).

The best of several repeats is the least noisy estimate of what the code costs (slower repeats measure the machine,
not the code). Results are in docs/performance.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import timeit
from datetime import datetime, timedelta, timezone
from pathlib import Path

from lxml import etree

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cwmp_models import codec  # noqa: E402
from cwmp_models import messages as m  # noqa: E402
from cwmp_models.envelope import NS_CWMP_1_0, NS_XSI, Envelope  # noqa: E402
from cwmp_models.types import VALUE_READERS, XsdType, parse_datetime  # noqa: E402

TARGET_RATIO = 0.5

_NOW = datetime(2026, 11, 27, 8, 30, 15, tzinfo=timezone.utc)

# The kind of values a WP820 reports: mostly strings, a few counters, flags and a time.
_PARAMETER_TEMPLATES: list[tuple[str, object, XsdType]] = [
    ("Device.DeviceSummary", "Device:1.2[](Baseline:1,UDPConnReq:1,Time:1,Download:1,Upload:1)", XsdType.STRING),
    ("Device.DeviceInfo.HardwareVersion", "V1.3A", XsdType.STRING),
    ("Device.DeviceInfo.SoftwareVersion", "1.0.7.81", XsdType.STRING),
    ("Device.DeviceInfo.ProvisioningCode", "", XsdType.STRING),
    ("Device.DeviceInfo.UpTime", 86213, XsdType.UNSIGNED_INT),
    ("Device.ManagementServer.ConnectionRequestURL", "http://192.168.20.41:7547/cr", XsdType.STRING),
    ("Device.ManagementServer.ParameterKey", "policy-3f2a9c", XsdType.STRING),
    ("Device.ManagementServer.PeriodicInformEnable", True, XsdType.BOOLEAN),
    ("Device.ManagementServer.PeriodicInformInterval", 86400, XsdType.UNSIGNED_INT),
    ("Device.ManagementServer.PeriodicInformTime", _NOW - timedelta(hours=3), XsdType.DATETIME),
    ("Device.ManagementServer.UDPConnectionRequestAddress", "203.0.113.7:50123", XsdType.STRING),
    ("Device.ManagementServer.STUNEnable", False, XsdType.BOOLEAN),
    ("Device.ManagementServer.STUNMaximumKeepAlivePeriod", -1, XsdType.INT),
    ("Device.ManagementServer.X_GRANDSTREAM_ConnectionRequestPort", 7547, XsdType.UNSIGNED_INT),
    ("Device.LAN.IPAddress", "192.168.20.41", XsdType.STRING),
    ("Device.LAN.MACAddress", "c0:74:ad:11:22:33", XsdType.STRING),
    ("Device.UserInterface.X_GRANDSTREAM_DisableSSH", True, XsdType.BOOLEAN),
    ("Device.UserInterface.X_GRANDSTREAM_AccessMethod", "HTTPS", XsdType.STRING),
    ("Device.UserInterface.X_GRANDSTREAM_Port", 443, XsdType.UNSIGNED_INT),
    ("Device.Services.VoiceService.1.VoiceProfile.1.SIP.UserAgentTransport", "TLS", XsdType.STRING),
]


def parameters(count: int) -> list[m.ParameterValueStruct]:
    """``count`` parameters cycling through the templates; repeats get a distinct instance number in the path."""
    result = []
    for index in range(count):
        name, value, value_type = _PARAMETER_TEMPLATES[index % len(_PARAMETER_TEMPLATES)]
        if index >= len(_PARAMETER_TEMPLATES):
            name = f"{name}.{index // len(_PARAMETER_TEMPLATES)}"
        result.append(m.ParameterValueStruct(name, value, value_type))
    return result


def inform_envelope() -> Envelope:
    inform = m.Inform(
        m.DeviceId("Grandstream", "000B82", "WP820", "c074ad112233"),
        [m.EventStruct("2 PERIODIC"), m.EventStruct("4 VALUE CHANGE")],
        1,
        _NOW,
        0,
        parameters(20),
    )
    return Envelope(inform, id="1804289383", namespace=NS_CWMP_1_0)


def get_parameter_values_response_envelope() -> Envelope:
    return Envelope(m.GetParameterValuesResponse(parameters(60)), id="acs-17", namespace=NS_CWMP_1_0)


_XSI_TYPE = f"{{{NS_XSI}}}type"
_READERS = {f"xsd:{value_type.wire_name}": (value_type, VALUE_READERS[value_type]) for value_type in XsdType}


def _ceiling_parameters(element) -> list[m.ParameterValueStruct]:
    result = []
    pairs = element.iterdescendants("Name", "Value")
    for name, value in zip(pairs, pairs):  # noqa: B905 - one iterator taken two by two
        value_type, read = _READERS[value.get(_XSI_TYPE)]
        text = value.text or ""
        result.append(m.ParameterValueStruct(name.text, text if read is None else read(text), value_type))
    return result


def _namespace(element) -> str:
    return element.tag[1 : element.tag.index("}")]


def ceiling_inform_message(inform) -> m.Inform:
    device_id, events, max_envelopes, current_time, retry_count, parameter_list = inform
    return m.Inform(
        m.DeviceId(*(field.text for field in device_id)),
        [m.EventStruct(code.text or "", key.text or "") for code, key in events],
        int(max_envelopes.text),
        parse_datetime(current_time.text),
        int(retry_count.text),
        _ceiling_parameters(parameter_list),
    )


def ceiling_inform(data: bytes) -> Envelope:
    header, body = etree.fromstring(data)
    inform = body[0]
    return Envelope(ceiling_inform_message(inform), id=header[0].text, namespace=_namespace(inform))


def ceiling_get_parameter_values_response(data: bytes) -> Envelope:
    header, body = etree.fromstring(data)
    response = body[0]
    message = m.GetParameterValuesResponse(_ceiling_parameters(response[0]))
    return Envelope(message, id=header[0].text, namespace=_namespace(response))


def breakdown(number: int, repeat: int) -> None:
    """What the codec does beyond the ceiling, for the Inform: each step added to the one before, timed in turn."""
    data = codec.serialize(inform_envelope())
    real_inform = codec._MESSAGE_DECODERS["Inform"]

    # The codec's own struct reader for Inform, but holding the ceiling's parameter loop.
    real_list = codec._decode_parameter_value_list
    codec._decode_parameter_value_list = _ceiling_parameters
    del codec._STRUCT_DECODERS[m.Inform]
    inform_by_tag = codec._struct_decoder(m.Inform)
    codec._decode_parameter_value_list = real_list
    codec._STRUCT_DECODERS[m.Inform] = real_inform

    def with_byte_checks():
        # parse()'s checks before the tree: size, NUL, the declaration's encoding, the "!" and "?" markers
        checked = bytes(data)
        if len(checked) > codec.DEFAULT_MAX_SIZE or not checked.strip() or b"\x00" in checked:
            raise AssertionError
        declaration = codec._DECLARATION.match(checked)
        if b"!" in checked or checked.find(b"?", declaration.end() if declaration else 0) >= 0:
            raise AssertionError
        return ceiling_inform(checked)

    def parse_with(decoder):
        def run():
            codec._MESSAGE_DECODERS["Inform"] = decoder
            try:
                return codec.parse(data)
            finally:
                codec._MESSAGE_DECODERS["Inform"] = real_inform

        return run

    steps = [
        ("floor: lxml.etree.fromstring", lambda: etree.fromstring(data)),
        ("ceiling", lambda: ceiling_inform(data)),
        ("+ byte checks", with_byte_checks),
        ("+ envelope, header, RPC and namespace by tag", parse_with(ceiling_inform_message)),
        ("+ Inform's fields by tag", parse_with(inform_by_tag)),
        ("+ parameter list regularity (= codec.parse)", lambda: codec.parse(data)),
    ]
    for _, step in steps[1:]:
        if step() != codec.parse(data):
            raise SystemExit("a breakdown step does not give the codec's envelope; refusing to time it")
    timers = [timeit.Timer(step, timer=time.process_time) for _, step in steps]
    best = [float("inf")] * len(steps)
    for _ in range(repeat):
        for index, timer in enumerate(timers):
            best[index] = min(best[index], timer.timeit(number) / number * 1e6)
    print(f"Inform, 20 parameters: best of {repeat} x {number} calls, process CPU time")
    print(f"{'step':46} {'µs':>7} {'added':>7} {'ratio':>7}")
    for index, (label, _) in enumerate(steps):
        added = best[index] - best[index - 1] if index > 1 else 0.0
        print(f"{label:46} {best[index]:7.1f} {added:7.1f} {best[0] / best[index]:7.3f}")


def best_rates(statement, floor, number: int, repeat: int) -> tuple[float, float]:
    """Calls per second of the fastest of ``repeat`` runs of ``number`` calls, for the statement and its floor.

    The two are timed alternately, run by run, so a slow spell of a shared machine hits both rather than one, and in
    CPU time of this process, so time the scheduler gives to other work is not counted."""
    statement_timer = timeit.Timer(statement, timer=time.process_time)
    floor_timer = timeit.Timer(floor, timer=time.process_time)
    best_statement = best_floor = float("inf")
    for _ in range(repeat):
        best_statement = min(best_statement, statement_timer.timeit(number))
        best_floor = min(best_floor, floor_timer.timeit(number))
    return number / best_statement, number / best_floor


def measure(label: str, envelope: Envelope, ceiling, number: int, repeat: int) -> list[tuple[str, float, float, bool]]:
    """Rows of (case, rate, floor rate, held to the target)."""
    data = codec.serialize(envelope)
    if codec.parse(data) != envelope:
        raise SystemExit(f"{label}: the codec does not round-trip its own output; refusing to time it")
    if ceiling(data) != envelope:
        raise SystemExit(f"{label}: the ceiling decoder does not give the same envelope; refusing to time it")
    tree = etree.fromstring(data)
    parse_rate, parse_floor = best_rates(lambda: codec.parse(data), lambda: etree.fromstring(data), number, repeat)
    ceiling_rate, ceiling_floor = best_rates(lambda: ceiling(data), lambda: etree.fromstring(data), number, repeat)
    serialize_rate, serialize_floor = best_rates(
        lambda: codec.serialize(envelope), lambda: etree.tostring(tree), number, repeat
    )
    return [
        (f"{label} parse ({len(data)} B)", parse_rate, parse_floor, True),
        ("  ceiling: no checks, this message only", ceiling_rate, ceiling_floor, False),
        (f"{label} serialize", serialize_rate, serialize_floor, True),
    ]


def main() -> int:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--number", type=int, default=300, help="calls per repeat (default 300)")
    arguments.add_argument("--repeat", type=int, default=40, help="repeats; the best is kept (default 40)")
    arguments.add_argument(
        "--breakdown", action="store_true", help="time what the codec adds to the ceiling, step by step (Inform)"
    )
    options = arguments.parse_args()
    if options.breakdown:
        breakdown(options.number, options.repeat)
        return 0

    rows = measure("Inform, 20 parameters", inform_envelope(), ceiling_inform, options.number, options.repeat)
    rows += measure(
        "GPV response, 60 parameters",
        get_parameter_values_response_envelope(),
        ceiling_get_parameter_values_response,
        options.number,
        options.repeat,
    )

    print(f"python {platform.python_version()} ({platform.python_implementation()}), lxml {etree.__version__}, "
          f"nproc {len(os.sched_getaffinity(0))}, best of {options.repeat} x {options.number} calls")
    header = f"{'case':44} {'codec msg/s':>12} {'floor msg/s':>12} {'ratio':>7} {'target':>7}  ok"
    print(header)
    print("-" * len(header))
    missed = 0
    for label, rate, floor, held in rows:
        ratio = rate / floor
        if not held:
            print(f"{label:44} {rate:12,.0f} {floor:12,.0f} {ratio:7.2f}")
            continue
        ok = ratio >= TARGET_RATIO
        missed += not ok
        print(f"{label:44} {rate:12,.0f} {floor:12,.0f} {ratio:7.2f} {TARGET_RATIO:7.2f}  {'yes' if ok else 'NO'}")
    print("floor: parse = bare lxml.etree.fromstring of the same bytes; "
          "serialize = bare lxml.etree.tostring of an already-parsed tree of them")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
