"""Codec throughput against a bare-lxml floor measured in the same run.

Run by hand from the repository root (not part of the test suite):

    .venv/bin/python bench/codec.py [--number N] [--repeat R]

Two messages, each a realistic WP820 exchange: an Inform with 20 parameters and a GetParameterValuesResponse with 60.
For each, four timings, best of R repeats of N calls (``timeit``, in process CPU time), each codec run alternating with
its floor run:

* parse: ``codec.parse(data)``; its floor is a bare ``lxml.etree.fromstring(data)`` of the same bytes (a tree, no
  decoding, no checks);
* serialize: ``codec.serialize(envelope)``; its floor is a bare ``lxml.etree.tostring(tree)`` of an already-parsed
  tree of the same bytes (no tree building, no value formatting).

The ratio is codec throughput / floor throughput; the targets are 0.5 for both directions, and the exit status is 1
when a ratio misses its target. The best of several repeats is the least noisy estimate of what the code costs (slower
repeats measure the machine, not the code). Results are in docs/performance.md.
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
from cwmp_models.envelope import NS_CWMP_1_0, Envelope  # noqa: E402
from cwmp_models.types import XsdType  # noqa: E402

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


def measure(label: str, envelope: Envelope, number: int, repeat: int) -> list[tuple[str, float, float]]:
    data = codec.serialize(envelope)
    if codec.parse(data) != envelope:
        raise SystemExit(f"{label}: the codec does not round-trip its own output; refusing to time it")
    tree = etree.fromstring(data)
    parse_rate, parse_floor = best_rates(lambda: codec.parse(data), lambda: etree.fromstring(data), number, repeat)
    serialize_rate, serialize_floor = best_rates(
        lambda: codec.serialize(envelope), lambda: etree.tostring(tree), number, repeat
    )
    return [
        (f"{label} parse ({len(data)} B)", parse_rate, parse_floor),
        (f"{label} serialize", serialize_rate, serialize_floor),
    ]


def main() -> int:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("--number", type=int, default=300, help="calls per repeat (default 300)")
    arguments.add_argument("--repeat", type=int, default=40, help="repeats; the best is kept (default 40)")
    options = arguments.parse_args()

    rows = measure("Inform, 20 parameters", inform_envelope(), options.number, options.repeat)
    gpv_response = get_parameter_values_response_envelope()
    rows += measure("GPV response, 60 parameters", gpv_response, options.number, options.repeat)

    print(f"python {platform.python_version()} ({platform.python_implementation()}), lxml {etree.__version__}, "
          f"nproc {len(os.sched_getaffinity(0))}, best of {options.repeat} x {options.number} calls")
    header = f"{'case':44} {'codec msg/s':>12} {'floor msg/s':>12} {'ratio':>7} {'target':>7}  ok"
    print(header)
    print("-" * len(header))
    missed = 0
    for label, rate, floor in rows:
        ratio = rate / floor
        ok = ratio >= TARGET_RATIO
        missed += not ok
        print(f"{label:44} {rate:12,.0f} {floor:12,.0f} {ratio:7.2f} {TARGET_RATIO:7.2f}  {'yes' if ok else 'NO'}")
    print("floor: parse = bare lxml.etree.fromstring of the same bytes; "
          "serialize = bare lxml.etree.tostring of an already-parsed tree of them")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
