"""Device-shaped inputs: every file in tests/corpus/ parses to the values stated for it here.

The files are written the way different real CPE stacks write CWMP (FIELD-NOTES "What real CPE stacks send" and
"Versions and XML shape"): odd prefixes, default-namespace tricks, 1999 xsi, wrong or missing array counts, untyped
values, odd booleans and dateTimes, BOMs, CRLF, pretty-printing, extra elements. ``EXPECTED`` states, per file, the
message class, namespace, protocol version, header fields and specific values with their exact Python types.
``LENIENCY`` maps every leniency item of FIELD-NOTES to the files that exercise it, each with a check on the raw bytes
that the file really shows the quirk, so the mapping cannot silently rot.

FIELD-NOTES items that live in HTTP, not in the XML (chunked and gzip bodies, Set-Cookie echoes, Digest nonce reuse,
a new Inform mid-session), are tested with the HTTP layer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable

import pytest
from lxml import etree

from cwmp_models import codec
from cwmp_models import messages as m
from cwmp_models.envelope import NS_CWMP_1_0, NS_CWMP_1_1, NS_CWMP_1_2, NS_CWMP_1_3, NS_CWMP_1_4, Envelope
from cwmp_models.schema import ArrayKind, ChoiceKind, RepeatedKind, StructKind
from cwmp_models.types import UNKNOWN_TIME, XsdType

CORPUS = Path(__file__).parent / "corpus"
BOM = b"\xef\xbb\xbf"

UTC = timezone.utc
CET = timezone(timedelta(hours=1))
EST = timezone(timedelta(hours=-5))
S, INT, UINT, BOOL, DT = XsdType.STRING, XsdType.INT, XsdType.UNSIGNED_INT, XsdType.BOOLEAN, XsdType.DATETIME


@dataclass(frozen=True)
class Expect:
    message: type[m.Message] | None
    namespace: str
    version: str
    header: dict[str, Any] = field(default_factory=dict)  # Envelope attributes (id, session_timeout, ...)
    fields: dict[str, Any] = field(default_factory=dict)  # dotted paths into the message: "event.1.command_key"
    parameters: dict[str, tuple[Any, XsdType]] = field(default_factory=dict)  # a chosen few: name -> (value, type)
    parameter_count: int | None = None


def _device(serial: str, oui: str = "000B82") -> dict[str, str]:
    return {
        "device_id.manufacturer": "Grandstream",
        "device_id.oui": oui,
        "device_id.product_class": "WP820",
        "device_id.serial_number": serial,
    }


EXPECTED: dict[str, Expect] = {
    "inform_soap-env-prefix_cwmp-1-0_bootstrap.xml": Expect(
        m.Inform, NS_CWMP_1_0, "1.0",
        header={"id": "1", "no_more_requests": None, "session_timeout": None},
        fields={
            **_device("c074ad8a1b2c"),
            "event_codes": ["0 BOOTSTRAP", "1 BOOT"],
            "max_envelopes": 1,
            "current_time": datetime(2026, 11, 27, 8, 30, 15, tzinfo=UTC),
            "retry_count": 0,
        },
        parameters={
            "Device.DeviceInfo.SoftwareVersion": ("1.0.7.81", S),
            "Device.DeviceInfo.ProvisioningCode": ("", S),
            "Device.DeviceInfo.UpTime": (47, UINT),
            "Device.ManagementServer.URL": ("https://acs.example.net:7548/cwmp", S),
            "Device.ManagementServer.PeriodicInformEnable": (True, BOOL),
            "Device.ManagementServer.PeriodicInformInterval": (86400, UINT),
        },
        parameter_count=15,
    ),
    "inform_soap-prefix_cwmp-1-1_periodic.xml": Expect(
        m.Inform, NS_CWMP_1_1, "1.1",
        header={"id": "1804289383"},
        fields={
            **_device("c074ad8a1b2d"),
            "event_codes": ["2 PERIODIC"],
            "current_time": datetime(2026, 11, 27, 9, 0, 2, tzinfo=CET),
        },
        parameters={
            "Device.DeviceInfo.UpTime": (86413, UINT),
            "Device.ManagementServer.ParameterKey": ("policy-3f2a9c", S),
            "Device.ManagementServer.STUNEnable": (False, BOOL),
            "Device.ManagementServer.STUNMaximumKeepAlivePeriod": (-1, INT),
            "Device.UserInterface.X_GRANDSTREAM_Port": (443, UINT),
        },
        parameter_count=12,
    ),
    "inform_soapenv-prefix_cwmp-1-2_value-change.xml": Expect(
        m.Inform, NS_CWMP_1_2, "1.2",
        header={"id": "5e3a"},
        fields={
            **_device("c074ad8a1b2e", oui="C074AD"),
            "event_codes": ["4 VALUE CHANGE"],
            "event.0.command_key": "",
            "current_time": datetime(2026, 11, 27, 10, 15, 0, 123000, tzinfo=CET),
            "retry_count": 2,
        },
        parameters={
            "Device.DeviceInfo.ProvisioningCode": ("", S),
            "Device.ManagementServer.UDPConnectionRequestAddress": ("203.0.113.7:50123", S),
            "Device.ManagementServer.NATDetected": (True, BOOL),
            "Device.UserInterface.X_GRANDSTREAM_AccessMethod": ("HTTP", S),
        },
        parameter_count=11,
    ),
    "inform_soap_env-underscore-prefix_connection-request.xml": Expect(
        m.Inform, NS_CWMP_1_0, "1.0",
        header={"id": "cr-0001"},
        fields={
            **_device("c074ad8a1b2f"),
            "event_codes": ["6 CONNECTION REQUEST"],
            "current_time": datetime(2026, 11, 27, 11, 2, 41),
        },
        parameters={
            "Device.DeviceInfo.SoftwareVersion": ("1.0.3.25", S),
            "Device.ManagementServer.X_GRANDSTREAM_ConnectionRequestPort": (7547, UINT),
            "Device.Services.VoiceService.1.VoiceProfile.1.Enable": ("Enabled", S),
            "Device.Services.VoiceService.1.VoiceProfile.1.SIP.UserAgentPort": (5060, UINT),
        },
        parameter_count=10,
    ),
    "inform_default-soap-namespace_children-inherit-it.xml": Expect(
        m.Inform, NS_CWMP_1_0, "1.0",
        header={"id": "42"},
        fields={**_device("c074ad8a1b30"), "event_codes": ["1 BOOT"], "retry_count": 1},
        parameters={
            "Device.DeviceInfo.UpTime": (12, UINT),
            "Device.ManagementServer.PeriodicInformEnable": (True, BOOL),
            "Device.UserInterface.X_GRANDSTREAM_Port": (80, UINT),
        },
        parameter_count=10,
    ),
    "inform_default-cwmp-namespace_on-rpc-element.xml": Expect(
        m.Inform, NS_CWMP_1_1, "1.1",
        header={"id": "77"},
        fields={**_device("c074ad8a1b31"), "event_codes": ["2 PERIODIC"]},
        parameters={
            "Device.DeviceInfo.ProvisioningCode": ("site-berlin", S),
            "Device.ManagementServer.PeriodicInformInterval": (3600, UINT),
            "Device.UserInterface.X_GRANDSTREAM_DisableSSH": (False, BOOL),
        },
        parameter_count=10,
    ),
    "inform_xsi-and-xsd-1999.xml": Expect(
        m.Inform, NS_CWMP_1_0, "1.0",
        header={"id": "1999"},
        fields={**_device("c074ad8a1b32"), "max_envelopes": 1, "current_time": datetime(2026, 11, 27, 14, tzinfo=UTC)},
        parameters={
            "Device.DeviceInfo.UpTime": (604800, UINT),
            "Device.ManagementServer.PeriodicInformEnable": (True, BOOL),
            "Device.ManagementServer.PeriodicInformTime": (datetime(2026, 11, 27, 2, 30, tzinfo=UTC), DT),
            "Device.ManagementServer.STUNMaximumKeepAlivePeriod": (-1, INT),
            "Device.UserInterface.X_GRANDSTREAM_DisableSSH": (False, BOOL),
        },
        parameter_count=12,
    ),
    "inform_xsi-type-on-every-element.xml": Expect(
        m.Inform, NS_CWMP_1_0, "1.0",
        header={"id": "typed-1"},
        fields={**_device("c074ad8a1b33"), "event_codes": ["1 BOOT"], "retry_count": 0},
        parameters={
            "Device.DeviceInfo.UpTime": (31, UINT),
            "Device.ManagementServer.PeriodicInformEnable": (True, BOOL),
            "Device.UserInterface.X_GRANDSTREAM_AccessMethod": ("HTTPS", S),
        },
        parameter_count=11,
    ),
    "inform_arraytype-zero-padded-counts.xml": Expect(
        m.Inform, NS_CWMP_1_0, "1.0",
        header={"id": "00000008"},
        fields={"event_codes": ["1 BOOT", "M Reboot"], "event.1.command_key": "reboot-window-1"},
        parameters={"Device.DeviceInfo.UpTime": (19, UINT)},
        parameter_count=8,
    ),
    "gpv-response_arraytype-zero-padded-07.xml": Expect(
        m.GetParameterValuesResponse, NS_CWMP_1_0, "1.0",
        header={"id": "acs-31"},
        parameters={
            "Device.UserInterface.X_GRANDSTREAM_Port": (443, UINT),
            "Device.UserInterface.X_GRANDSTREAM_DisableSSH": (True, BOOL),
            "Device.UserInterface.X_GRANDSTREAM_AdminLoginPassword": ("", S),
            "Device.Services.VoiceService.1.VoiceProfile.1.RTP.SRTP.X_GRANDSTREAM_SRTPMode": ("EnabledAndForced", S),
        },
        parameter_count=7,
    ),
    "inform_arraytype-wrong-counts_list-declares-16-holds-7.xml": Expect(
        m.Inform, NS_CWMP_1_0, "1.0",
        header={"id": "16"},
        fields={"event_codes": ["2 PERIODIC"]},
        parameters={"Device.ManagementServer.ParameterKey": ("policy-3f2a9c", S)},
        parameter_count=7,
    ),
    "gpv-response_list-declares-16-holds-7.xml": Expect(
        m.GetParameterValuesResponse, NS_CWMP_1_0, "1.0",
        header={"id": "acs-32"},
        parameters={
            "Device.ManagementServer.Username": ("000B82-WP820-c074ad8a1b36", S),
            "Device.ManagementServer.Password": ("", S),
            "Device.ManagementServer.PeriodicInformEnable": (True, BOOL),
            "Device.ManagementServer.PeriodicInformInterval": (86400, UINT),
            "Device.ManagementServer.STUNEnable": (False, BOOL),
        },
        parameter_count=7,
    ),
    "inform_arraytype-missing.xml": Expect(
        m.Inform, NS_CWMP_1_0, "1.0",
        header={"id": "no-array-type"},
        fields={**_device("c074ad8a1b37"), "event_codes": ["2 PERIODIC"]},
        parameters={
            "Device.DeviceInfo.UpTime": (90061, UINT),
            "Device.ManagementServer.PeriodicInformInterval": (600, UINT),
            "Device.LAN.MACAddress": ("c0:74:ad:8a:1b:37", S),
        },
        parameter_count=10,
    ),
    "inform_empty-event-arrays.xml": Expect(
        m.Inform, NS_CWMP_1_0, "1.0",
        header={"id": "no-events"},
        fields={"event": [], "retry_count": 3},
        parameters={"Device.ManagementServer.NATDetected": (False, BOOL)},
        parameter_count=10,
    ),
    "inform_self-closed-empty-event_and_empty-parameter-list.xml": Expect(
        m.Inform, NS_CWMP_1_0, "1.0",
        header={"id": "bare"},
        fields={**_device("c074ad8a1b39"), "event": [], "current_time": datetime(2026, 11, 27, 19, 30, tzinfo=UTC)},
        parameter_count=0,
    ),
    "inform_values-without-xsi-type.xml": Expect(
        m.Inform, NS_CWMP_1_0, "1.0",
        header={"id": "untyped"},
        parameters={
            # No xsi:type means string (FIELD-NOTES): the text is kept exactly, never guessed into a number.
            "Device.DeviceInfo.UpTime": ("3600", S),
            "Device.ManagementServer.ParameterKey": ("", S),
            "Device.ManagementServer.PeriodicInformEnable": ("1", S),
            "Device.UserInterface.X_GRANDSTREAM_DisableSSH": ("true", S),
        },
        parameter_count=10,
    ),
    "gpv-response_boolean-spellings.xml": Expect(
        m.GetParameterValuesResponse, NS_CWMP_1_0, "1.0",
        header={"id": "acs-33"},
        parameters={
            "Device.ManagementServer.PeriodicInformEnable": (True, BOOL),
            "Device.ManagementServer.STUNEnable": (False, BOOL),
            "Device.ManagementServer.UpgradesManaged": (True, BOOL),
            "Device.ManagementServer.NATDetected": (False, BOOL),
            "Device.UserInterface.X_GRANDSTREAM_DisableSSH": (True, BOOL),
            "Device.ManagementServer.X_GRANDSTREAM_LockKeypad": (False, BOOL),
            "Device.Services.VoiceService.1.X_GRANDSTREAM_DisableDirectIPCall": (True, BOOL),
            # Not a boolean at all: the device's text is kept with its declared type, nothing is invented.
            "Device.Services.VoiceService.1.X_GRANDSTREAM_UseSTUNToDetectNetworkConnectivity": ("yes", BOOL),
        },
        parameter_count=8,
    ),
    "gpv-response_datetime-forms.xml": Expect(
        m.GetParameterValuesResponse, NS_CWMP_1_0, "1.0",
        header={"id": "acs-34"},
        parameters={
            "Device.Time.CurrentLocalTime": (datetime(2026, 11, 27, 21, 4, 5, 250000, tzinfo=CET), DT),
            "Device.ManagementServer.PeriodicInformTime": (datetime(2026, 11, 27, 2, 30, tzinfo=UTC), DT),
            "Device.X_GRANDSTREAM_Upgrade.LastCheck": (datetime(2026, 11, 27, 3, 15), DT),
            "Device.X_GRANDSTREAM_Upgrade.LastSuccess": (datetime(2026, 11, 26, 22, 15, 0, 500000), DT),
            "Device.X_GRANDSTREAM_Syslog.LastSent": (datetime(2026, 11, 27, 7, tzinfo=EST), DT),
            "Device.DeviceInfo.FirstUseDate": (UNKNOWN_TIME, DT),
            "Device.Time.X_GRANDSTREAM_LastSync": (datetime(2026, 11, 27, 21, 4, 5, 123456, tzinfo=UTC), DT),
        },
        parameter_count=7,
    ),
    "inform_malformed-datetimes.xml": Expect(
        m.Inform, NS_CWMP_1_0, "1.0",
        header={"id": "clock-not-set"},
        # CurrentTime "0" is informational garbage: read as the unknown time rather than refusing the Inform.
        fields={"current_time": UNKNOWN_TIME, "event_codes": ["1 BOOT"]},
        parameters={
            "Device.ManagementServer.PeriodicInformTime": (datetime(1970, 1, 1), DT),
            "Device.Time.CurrentLocalTime": ("2026-13-45T25:61:00", DT),
            "Device.X_GRANDSTREAM_Upgrade.LastCheck": ("", DT),
            "Device.LAN.IPAddress": ("10.20.30.54", S),
        },
        parameter_count=10,
    ),
    "inform_unknown-time-0001-01-01.xml": Expect(
        m.Inform, NS_CWMP_1_0, "1.0",
        header={"id": "no-ntp"},
        fields={"current_time": UNKNOWN_TIME, "event_codes": ["0 BOOTSTRAP", "1 BOOT"]},
        parameters={
            "Device.DeviceInfo.SoftwareVersion": ("1.0.1.16", S),
            "Device.ManagementServer.PeriodicInformTime": (UNKNOWN_TIME, DT),
            # A year before 1000 without a zone is time since boot (TR-069): 9 s after boot.
            "Device.Time.CurrentLocalTime": (datetime(1, 1, 1, 0, 0, 9), DT),
        },
        parameter_count=10,
    ),
    "inform_no-xml-declaration_no-more-requests-header.xml": Expect(
        m.Inform, NS_CWMP_1_0, "1.0",
        header={"id": "nmr", "no_more_requests": True},
        fields={**_device("c074ad8a1b3d")},
        parameters={"Device.DeviceInfo.UpTime": (172800, UINT)},
        parameter_count=10,
    ),
    "empty-envelope_no-more-requests-0.xml": Expect(
        None, NS_CWMP_1_0, "1.0",
        header={"id": None, "no_more_requests": False},
    ),
    "inform_utf8-bom_and_non-ascii-values.xml": Expect(
        m.Inform, NS_CWMP_1_0, "1.0",
        header={"id": "bom"},
        fields={**_device("c074ad8a1b3e")},
        parameters={
            "Device.DeviceInfo.ProvisioningCode": ("Büro-Zürich", S),
            "Device.Services.VoiceService.1.VoiceProfile.1.Line.1.CallingFeatures.CallerIDName": (
                "Empfang – Zentrale ☎",
                S,
            ),
        },
        parameter_count=10,
    ),
    "gpv-response_crlf-line-endings.xml": Expect(
        m.GetParameterValuesResponse, NS_CWMP_1_0, "1.0",
        header={"id": "acs-35"},
        parameters={
            "Device.X_GRANDSTREAM_Syslog.ServerAddress": ("syslog.example.net", S),
            "Device.X_GRANDSTREAM_Syslog.LogLevel": (2, UINT),
            "Device.X_GRANDSTREAM_Upgrade.ConfigFile.AuthenticateConfFile": (True, BOOL),
            # XML turns the CRLF inside a value into LF; that is the value.
            "Device.Services.VoiceService.1.VoiceProfile.1.Line.1.CallingFeatures.CallerIDName": (
                "first line\nsecond line",
                S,
            ),
        },
        parameter_count=6,
    ),
    "inform_pretty-printed-with-padded-values.xml": Expect(
        m.Inform, NS_CWMP_1_0, "1.0",
        header={"id": "pretty"},
        fields={
            **_device("c074ad8a1b3f"),
            "max_envelopes": 1,
            "current_time": datetime(2026, 11, 28, tzinfo=UTC),
            "retry_count": 0,
        },
        parameters={
            "Device.DeviceInfo.SoftwareVersion": ("1.0.7.81", S),
            "Device.DeviceInfo.UpTime": (86400, UINT),
            "Device.ManagementServer.PeriodicInformEnable": (True, BOOL),
            "Device.ManagementServer.PeriodicInformTime": (datetime(2026, 11, 27, 2, 30, tzinfo=UTC), DT),
            "Device.ManagementServer.STUNMaximumKeepAlivePeriod": (-1, INT),
        },
        parameter_count=10,
    ),
    "inform_cwmp-1-2_session-timeout-header.xml": Expect(
        m.Inform, NS_CWMP_1_2, "1.3",
        header={"id": "st-60", "session_timeout": 60, "supported_cwmp_versions": None},
        parameters={"Device.ManagementServer.CWMPRetryIntervalMultiplier": (2000, UINT)},
        parameter_count=10,
    ),
    "inform_cwmp-1-2_supported-cwmp-versions-header.xml": Expect(
        m.Inform, NS_CWMP_1_2, "1.4",
        header={"id": "v14", "session_timeout": 30, "supported_cwmp_versions": "1.0, 1.1, 1.2, 1.3, 1.4"},
        parameters={
            "Device.DeviceInfo.SoftwareVersion": ("1.0.7.97", S),
            "Device.ManagementServer.STUNEnable": (True, BOOL),
        },
        parameter_count=10,
    ),
    "inform_nonstandard-cwmp-1-3-namespace.xml": Expect(
        m.Inform, NS_CWMP_1_3, "1.3",
        header={"id": "ns13", "session_timeout": None},
        fields={**_device("c074ad8a1b42")},
        parameter_count=10,
    ),
    "inform_nonstandard-cwmp-1-4-namespace.xml": Expect(
        m.Inform, NS_CWMP_1_4, "1.4",
        header={"id": "ns14", "supported_cwmp_versions": None},
        fields={**_device("c074ad8a1b43")},
        parameter_count=10,
    ),
    "inform_unknown-extra-elements-and-attributes.xml": Expect(
        m.Inform, NS_CWMP_1_0, "1.0",
        header={"id": "extras"},
        fields={**_device("c074ad8a1b44"), "event_codes": ["2 PERIODIC"], "event.0.command_key": ""},
        parameters={
            "Device.DeviceInfo.HardwareVersion": ("V1.2A", S),
            "Device.DeviceInfo.SoftwareVersion": ("1.0.7.81", S),
            "Device.DeviceInfo.ProvisioningCode": ("", S),
            "Device.DeviceInfo.UpTime": (3600, UINT),
        },
        parameter_count=10,
    ),
    "inform_qualified-child-elements.xml": Expect(
        m.Inform, NS_CWMP_1_0, "1.0",
        header={"id": "qualified"},
        fields={**_device("c074ad8a1b45"), "event_codes": ["2 PERIODIC"], "retry_count": 0},
        parameters={
            "Device.DeviceInfo.UpTime": (61, UINT),
            "Device.ManagementServer.PeriodicInformEnable": (True, BOOL),
            "Device.UserInterface.X_GRANDSTREAM_DisableSSH": (False, BOOL),
        },
        parameter_count=10,
    ),
    "inform_transfer-complete-and-vendor-events.xml": Expect(
        m.Inform, NS_CWMP_1_0, "1.0",
        header={"id": "after-download"},
        fields={
            "event_codes": ["1 BOOT", "7 TRANSFER COMPLETE", "M Download", "M Reboot", "X 000B82 10000_1"],
            "event.2.command_key": "cfg-3f2a9c",
        },
        parameters={"Device.ManagementServer.ParameterKey": ("policy-3f2a9c", S)},
        parameter_count=10,
    ),
    "spv-response_status-0.xml": Expect(
        m.SetParameterValuesResponse, NS_CWMP_1_0, "1.0", header={"id": "acs-40"}, fields={"status": 0}
    ),
    "spv-response_status-1_typed-status_cwmp-1-1.xml": Expect(
        m.SetParameterValuesResponse, NS_CWMP_1_1, "1.1", header={"id": "acs-41"}, fields={"status": 1}
    ),
    "fault_9003-with-set-parameter-values-faults.xml": Expect(
        m.Fault, NS_CWMP_1_0, "1.0",
        header={"id": "acs-42"},
        fields={
            "fault_code": 9003,
            "fault_string": "Invalid arguments",
            "set_parameter_values_faults": [
                m.SetParameterValuesFault("Device.UserInterface.X_GRANDSTREAM_Port", 9007, "Invalid parameter value"),
                m.SetParameterValuesFault(
                    "Device.DeviceInfo.SerialNumber", 9008, "Attempt to set a non-writable parameter"
                ),
                m.SetParameterValuesFault("Device.UserInterface.X_GRANDSTREAM_SSHPort", 9005, ""),
            ],
        },
    ),
    "fault_9005-invalid-parameter-name_soap-prefix_qualified-faultcode.xml": Expect(
        m.Fault, NS_CWMP_1_2, "1.2",
        header={"id": "acs-43"},
        fields={
            "fault_code": 9005,
            "fault_string": "Invalid parameter name: Device.Bluetooth.Enable",
            "set_parameter_values_faults": [],
        },
    ),
    "fault_soap-fault-without-cwmp-detail.xml": Expect(
        m.Fault, NS_CWMP_1_0, "1.0",
        header={"id": "acs-44"},
        fields={"fault_code": 0, "fault_string": "Internal error"},
    ),
    "transfer-complete_success_fractional-times.xml": Expect(
        m.TransferComplete, NS_CWMP_1_0, "1.0",
        header={"id": "tc-1"},
        fields={
            "command_key": "cfg-3f2a9c",
            "fault_struct": m.FaultStruct(0, ""),
            "start_time": datetime(2026, 11, 28, 4, 59, 10, 500000, tzinfo=UTC),
            "complete_time": datetime(2026, 11, 28, 4, 59, 12, 750000, tzinfo=UTC),
        },
    ),
    "transfer-complete_failed_unknown-times.xml": Expect(
        m.TransferComplete, NS_CWMP_1_1, "1.1",
        header={"id": "tc-2"},
        fields={
            "command_key": "fw-1.0.7.97",
            "fault_struct.fault_code": 9010,
            "fault_struct.fault_string": "Download failure: HTTP 404",
            "start_time": UNKNOWN_TIME,
            "complete_time": UNKNOWN_TIME,
        },
    ),
    "gpn-response_writable-as-0-1-true-false.xml": Expect(
        m.GetParameterNamesResponse, NS_CWMP_1_0, "1.0",
        header={"id": "acs-45"},
        fields={
            "parameter_list": [
                m.ParameterInfoStruct("Device.UserInterface.", False),
                m.ParameterInfoStruct("Device.UserInterface.X_GRANDSTREAM_AccessMethod", True),
                m.ParameterInfoStruct("Device.UserInterface.X_GRANDSTREAM_Port", True),
                m.ParameterInfoStruct("Device.UserInterface.X_GRANDSTREAM_AdminLoginPassword", True),
                m.ParameterInfoStruct("Device.UserInterface.X_GRANDSTREAM_DisableSSH", True),
                m.ParameterInfoStruct("Device.UserInterface.X_GRANDSTREAM_SSHPort", False),
            ],
            "parameter_list.1.writable": True,
        },
    ),
    "get-rpc-methods_request-from-cpe.xml": Expect(m.GetRPCMethods, NS_CWMP_1_0, "1.0", header={"id": "cpe-2"}),
    "get-rpc-methods-response_method-list.xml": Expect(
        m.GetRPCMethodsResponse, NS_CWMP_1_0, "1.0",
        header={"id": "acs-46"},
        fields={
            "method_list": [
                "GetRPCMethods", "SetParameterValues", "GetParameterValues", "GetParameterNames",
                "SetParameterAttributes", "GetParameterAttributes", "AddObject", "DeleteObject", "Reboot",
                "Download", "Upload", "FactoryReset",
            ],
        },
    ),
    "empty-envelope_body-only.xml": Expect(None, NS_CWMP_1_2, "1.2", header={"id": None, "hold_requests": None}),
    "empty-envelope_header-id-cwmp-1-1_whitespace-body.xml": Expect(None, NS_CWMP_1_1, "1.1", header={"id": "idle"}),
    "download-response_status-1_unknown-times.xml": Expect(
        m.DownloadResponse, NS_CWMP_1_0, "1.0",
        header={"id": "acs-47"},
        fields={"status": 1, "start_time": UNKNOWN_TIME, "complete_time": UNKNOWN_TIME},
    ),
}


# --------------------------------------------------------------------------------------------------------------------
# Checking a parsed envelope against its expectation
# --------------------------------------------------------------------------------------------------------------------


def _resolve(obj: Any, path: str) -> Any:
    for step in path.split("."):
        obj = obj[int(step)] if step.isdigit() else getattr(obj, step)
    return obj


def _assert_same(actual: Any, expected: Any, where: str) -> None:
    """Equal, of exactly the same type, and for datetimes in the same zone (naive stays naive)."""
    assert type(actual) is type(expected), f"{where}: {type(actual).__name__} {actual!r}, expected {expected!r}"
    if isinstance(expected, list):
        assert len(actual) == len(expected), f"{where}: {actual!r}"
        for index, (a, e) in enumerate(zip(actual, expected)):
            _assert_same(a, e, f"{where}[{index}]")
        return
    assert actual == expected, f"{where}: {actual!r}, expected {expected!r}"
    if isinstance(expected, datetime):
        assert actual.utcoffset() == expected.utcoffset(), f"{where}: zone {actual.tzinfo}, expected {expected.tzinfo}"


def _check(envelope: Envelope, expect: Expect) -> None:
    if expect.message is None:
        assert envelope.body is None
    else:
        assert type(envelope.body) is expect.message
    assert envelope.namespace == expect.namespace
    assert envelope.protocol_version == expect.version
    for attr, value in expect.header.items():
        _assert_same(getattr(envelope, attr), value, attr)
    for path, value in expect.fields.items():
        _assert_same(_resolve(envelope.body, path), value, path)
    if expect.parameters or expect.parameter_count is not None:
        items = envelope.body.parameter_list
        by_name = {item.name: item for item in items}
        assert len(by_name) == len(items), "duplicate parameter names"
        for name, (value, value_type) in expect.parameters.items():
            assert name in by_name, f"{name} missing"
            assert by_name[name].type is value_type, f"{name}: type {by_name[name].type}"
            _assert_same(by_name[name].value, value, name)
        if expect.parameter_count is not None:
            assert len(items) == expect.parameter_count


def _corpus_files() -> list[str]:
    return sorted(path.name for path in CORPUS.glob("*.xml"))


def test_the_corpus_is_large_enough_and_every_file_has_an_expectation():
    files = _corpus_files()
    assert len(files) >= 30
    assert set(files) == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus_file_parses_to_the_stated_values(name):
    _check(codec.parse((CORPUS / name).read_bytes()), EXPECTED[name])


def test_the_checker_itself_bites():
    """A negative control: a wrong type, a wrong zone and a wrong value are each caught."""
    envelope = codec.parse((CORPUS / "gpv-response_datetime-forms.xml").read_bytes())
    good = EXPECTED["gpv-response_datetime-forms.xml"]
    wrong = [
        {"Device.X_GRANDSTREAM_Upgrade.LastCheck": (datetime(2026, 11, 27, 3, 15, tzinfo=UTC), DT)},  # zone
        {"Device.ManagementServer.PeriodicInformTime": ("2026-11-27T02:30:00Z", DT)},  # type
        {"Device.DeviceInfo.FirstUseDate": (UNKNOWN_TIME, S)},  # xsd type
        {"Device.Time.X_GRANDSTREAM_LastSync": (datetime(2026, 11, 27, 21, 4, 5, tzinfo=UTC), DT)},  # value
    ]
    for parameters in wrong:
        with pytest.raises(AssertionError):
            _check(envelope, Expect(good.message, good.namespace, good.version, parameters=parameters))
    with pytest.raises(AssertionError):
        _check(envelope, Expect(good.message, good.namespace, good.version, header={"id": 34}))


# --------------------------------------------------------------------------------------------------------------------
# Every leniency item of FIELD-NOTES, the files that exercise it, and evidence on the raw bytes that they do
# --------------------------------------------------------------------------------------------------------------------


def _tree(raw: bytes) -> etree._Element:
    return etree.fromstring(raw)  # plain lxml is fine here: the corpus is ours and holds no DTD


def _local(tag: str) -> str:
    return etree.QName(tag).localname


def _rpc(raw: bytes) -> etree._Element | None:
    body = next(el for el in _tree(raw) if _local(el.tag) == "Body")
    return next(iter(body), None)


def _arrays(raw: bytes) -> list[tuple[str, int]]:
    """(declared count text, number of items) of every element carrying a soap-enc:arrayType."""
    found = []
    for element in _tree(raw).iter():
        for key, value in element.attrib.items():
            if _local(key) == "arrayType":
                found.append((value[value.rindex("[") + 1 : -1], len(element)))
    return found


def _array_elements_without_array_type(raw: bytes) -> list[str]:
    return [
        _local(el.tag)
        for el in _tree(raw).iter()
        if _local(el.tag) in ("Event", "ParameterList", "MethodList")
        and not any(_local(key) == "arrayType" for key in el.attrib)
    ]


def _type_of(element: etree._Element) -> str | None:
    for key, value in element.attrib.items():
        if _local(key) == "type":
            return value.rpartition(":")[2]
    return None


def _values(raw: bytes, xsd_type: str | None) -> list[str]:
    """Texts of Value elements declared as ``xsd_type`` (None: declared with no type at all)."""
    return [(el.text or "") for el in _tree(raw).iter() if _local(el.tag) == "Value" and _type_of(el) == xsd_type]


def _uses_xsi_type_of(raw: bytes, xsi_namespace: str) -> bool:
    return any(f"{{{xsi_namespace}}}type" in el.attrib for el in _tree(raw).iter())


def _booleans(raw: bytes) -> set[str]:
    writable = [(el.text or "") for el in _tree(raw).iter() if _local(el.tag) == "Writable"]
    return {text.strip() for text in _values(raw, "boolean") + writable}


_XSD_DATETIME = re.compile(
    r"-?\d{4,}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:([0-5]\d|60)(?P<fraction>\.\d+)?"
    r"(?P<zone>Z|[+-]\d\d:\d\d)?"
)


def _datetimes(raw: bytes) -> list[str]:
    fields = ("CurrentTime", "StartTime", "CompleteTime")
    texts = [(el.text or "") for el in _tree(raw).iter() if _local(el.tag) in fields]
    return [text.strip() for text in texts + _values(raw, "dateTime")]


def _datetime_forms(raw: bytes) -> list[re.Match | None]:
    return [_XSD_DATETIME.fullmatch(text) for text in _datetimes(raw)]


def _tags_of(kind: Any) -> set[str]:
    if isinstance(kind, StructKind):
        return _tags_of_class(kind.cls)
    if isinstance(kind, ArrayKind):
        return {kind.item_tag} | _tags_of(kind.item)
    if isinstance(kind, RepeatedKind):
        return _tags_of(kind.item)
    if isinstance(kind, ChoiceKind):
        return set().union(*(_tags_of_class(cls) for _, cls in kind.choices))
    return set()


def _tags_of_class(cls: type) -> set[str]:
    return set().union(*({spec.tag} | _tags_of(spec.kind) for spec in cls.FIELDS))


# Every element name CWMP defines: SOAP's, the header elements, and whatever the message tables name.
_KNOWN_TAGS = {"Envelope", "Header", "Body", "Fault", "faultcode", "faultstring", "detail"}
_KNOWN_TAGS |= {"ID", "HoldRequests", "SessionTimeout", "SupportedCWMPVersions", "UseCWMPVersion", "NoMoreRequests"}
_KNOWN_TAGS |= set().union(*({cls.NAME} | _tags_of_class(cls) for cls in m.ALL_MESSAGES))
_KNOWN_ATTRIBUTES = {"type", "arrayType", "mustUnderstand"}


def _unknown_elements(raw: bytes) -> set[str]:
    return {_local(el.tag) for el in _tree(raw).iter() if _local(el.tag) not in _KNOWN_TAGS}


def _unknown_attributes(raw: bytes) -> set[str]:
    return {_local(key) for el in _tree(raw).iter() for key in el.attrib if _local(key) not in _KNOWN_ATTRIBUTES}


def _qualified_children(raw: bytes) -> bool:
    rpc = _rpc(raw)
    return rpc is not None and any(etree.QName(el).namespace for el in rpc.iterdescendants())


def _typed_everywhere(raw: bytes) -> bool:
    rpc = _rpc(raw)
    leaves = [el for el in rpc.iterdescendants() if len(el) == 0]
    return bool(leaves) and all(_type_of(el) for el in leaves)


def _envelope_prefix(raw: bytes) -> str | None:
    return _tree(raw).prefix


@dataclass(frozen=True)
class Leniency:
    files: tuple[str, ...]
    evidence: Callable[[bytes], bool]  # true when a file shows the quirk


# Keyed by FIELD-NOTES wording ("What real CPE stacks send" and "Versions and XML shape", input side).
LENIENCY: dict[str, Leniency] = {
    "namespace prefix SOAP-ENV": Leniency(
        ("inform_soap-env-prefix_cwmp-1-0_bootstrap.xml", "inform_xsi-and-xsd-1999.xml"),
        lambda raw: _envelope_prefix(raw) == "SOAP-ENV",
    ),
    "namespace prefix soap": Leniency(
        ("inform_soap-prefix_cwmp-1-1_periodic.xml", "inform_arraytype-missing.xml"),
        lambda raw: _envelope_prefix(raw) == "soap",
    ),
    "namespace prefix soapenv": Leniency(
        ("inform_soapenv-prefix_cwmp-1-2_value-change.xml", "gpv-response_list-declares-16-holds-7.xml"),
        lambda raw: _envelope_prefix(raw) == "soapenv",
    ),
    "namespace prefix soap_env": Leniency(
        ("inform_soap_env-underscore-prefix_connection-request.xml",),
        lambda raw: _envelope_prefix(raw) == "soap_env",
    ),
    "any namespace prefixes (default-namespace declarations)": Leniency(
        ("inform_default-soap-namespace_children-inherit-it.xml", "inform_default-cwmp-namespace_on-rpc-element.xml"),
        lambda raw: b' xmlns="' in raw,
    ),
    "xsi of 1999": Leniency(
        ("inform_xsi-and-xsd-1999.xml",),
        lambda raw: _uses_xsi_type_of(raw, "http://www.w3.org/1999/XMLSchema-instance"),
    ),
    "xsi of 2001": Leniency(
        ("inform_soap-env-prefix_cwmp-1-0_bootstrap.xml", "gpv-response_datetime-forms.xml"),
        lambda raw: _uses_xsi_type_of(raw, "http://www.w3.org/2001/XMLSchema-instance"),
    ),
    "xsi:type on every element": Leniency(
        ("inform_xsi-type-on-every-element.xml", "inform_xsi-and-xsd-1999.xml"),
        _typed_everywhere,
    ),
    "array counts that are wrong": Leniency(
        (
            "inform_arraytype-wrong-counts_list-declares-16-holds-7.xml",
            "gpv-response_list-declares-16-holds-7.xml",
            "get-rpc-methods-response_method-list.xml",
        ),
        lambda raw: any(int(declared) != held for declared, held in _arrays(raw)),
    ),
    "array counts zero-padded ([0008], [07])": Leniency(
        (
            "inform_arraytype-zero-padded-counts.xml",
            "gpv-response_arraytype-zero-padded-07.xml",
            "gpn-response_writable-as-0-1-true-false.xml",
        ),
        lambda raw: any(len(declared) > 1 and declared.startswith("0") for declared, _ in _arrays(raw)),
    ),
    "array counts missing": Leniency(
        ("inform_arraytype-missing.xml", "inform_self-closed-empty-event_and_empty-parameter-list.xml"),
        lambda raw: bool(_array_elements_without_array_type(raw)),
    ),
    "empty Event arrays": Leniency(
        ("inform_empty-event-arrays.xml", "inform_self-closed-empty-event_and_empty-parameter-list.xml"),
        lambda raw: any(_local(el.tag) == "Event" and len(el) == 0 for el in _tree(raw).iter()),
    ),
    "a ParameterList declaring 16 items and holding 7": Leniency(
        ("inform_arraytype-wrong-counts_list-declares-16-holds-7.xml", "gpv-response_list-declares-16-holds-7.xml"),
        lambda raw: ("16", 7) in _arrays(raw),
    ),
    "values without xsi:type (treat as string)": Leniency(
        ("inform_values-without-xsi-type.xml",),
        lambda raw: bool(_values(raw, None)),
    ),
    "booleans as true/false": Leniency(
        ("gpv-response_boolean-spellings.xml", "gpn-response_writable-as-0-1-true-false.xml"),
        lambda raw: {"true", "false"} <= _booleans(raw),
    ),
    "booleans as 1/0": Leniency(
        (
            "gpv-response_boolean-spellings.xml",
            "gpn-response_writable-as-0-1-true-false.xml",
            "inform_xsi-and-xsd-1999.xml",
        ),
        lambda raw: {"1", "0"} <= _booleans(raw),
    ),
    "booleans in other cases (TRUE, False)": Leniency(
        ("gpv-response_boolean-spellings.xml", "gpn-response_writable-as-0-1-true-false.xml"),
        lambda raw: any(text not in ("true", "false", "1", "0") and text.lower() in ("true", "false")
                        for text in _booleans(raw)),
    ),
    "dateTimes with fraction": Leniency(
        ("gpv-response_datetime-forms.xml", "transfer-complete_success_fractional-times.xml",
         "inform_soapenv-prefix_cwmp-1-2_value-change.xml"),
        lambda raw: any(match and match["fraction"] for match in _datetime_forms(raw)),
    ),
    "dateTimes without fraction": Leniency(
        ("gpv-response_datetime-forms.xml", "inform_soap-env-prefix_cwmp-1-0_bootstrap.xml"),
        lambda raw: any(match and not match["fraction"] for match in _datetime_forms(raw)),
    ),
    "dateTimes with zone (Z and offsets)": Leniency(
        ("gpv-response_datetime-forms.xml", "inform_soap-prefix_cwmp-1-1_periodic.xml"),
        lambda raw: any(match and match["zone"] for match in _datetime_forms(raw)),
    ),
    "dateTimes without zone": Leniency(
        ("gpv-response_datetime-forms.xml", "inform_soap_env-underscore-prefix_connection-request.xml"),
        lambda raw: any(match and not match["zone"] for match in _datetime_forms(raw)),
    ),
    "dateTimes occasionally malformed": Leniency(
        ("inform_malformed-datetimes.xml",),
        lambda raw: any(match is None for match in _datetime_forms(raw)),
    ),
    "the unknown-time value 0001-01-01T00:00:00Z": Leniency(
        ("inform_unknown-time-0001-01-01.xml", "transfer-complete_failed_unknown-times.xml",
         "download-response_status-1_unknown-times.xml", "gpv-response_datetime-forms.xml"),
        lambda raw: "0001-01-01T00:00:00Z" in _datetimes(raw),
    ),
    "a NoMoreRequests header (obsolete: tolerate, ignore)": Leniency(
        ("inform_no-xml-declaration_no-more-requests-header.xml", "empty-envelope_no-more-requests-0.xml"),
        lambda raw: b"NoMoreRequests>" in raw,
    ),
    "an XML declaration": Leniency(
        ("inform_soap-env-prefix_cwmp-1-0_bootstrap.xml", "inform_utf8-bom_and_non-ascii-values.xml"),
        lambda raw: raw.removeprefix(BOM).startswith(b"<?xml"),
    ),
    "no XML declaration": Leniency(
        ("inform_no-xml-declaration_no-more-requests-header.xml", "empty-envelope_body-only.xml"),
        lambda raw: raw.startswith(b"<") and not raw.startswith(b"<?xml"),
    ),
    "a UTF-8 byte order mark": Leniency(
        ("inform_utf8-bom_and_non-ascii-values.xml",),
        lambda raw: raw.startswith(BOM),
    ),
    "CRLF line endings": Leniency(
        ("gpv-response_crlf-line-endings.xml",),
        lambda raw: raw.count(b"\r\n") > 10 and raw.count(b"\n") == raw.count(b"\r\n"),
    ),
    "pretty-printed, whitespace around values": Leniency(
        ("inform_pretty-printed-with-padded-values.xml",),
        lambda raw: bool(re.search(rb">\s*\n\s+[0-9a-z-]", raw)),
    ),
    "the SessionTimeout header (1.3)": Leniency(
        ("inform_cwmp-1-2_session-timeout-header.xml", "inform_cwmp-1-2_supported-cwmp-versions-header.xml"),
        lambda raw: b"SessionTimeout" in raw,
    ),
    "the SupportedCWMPVersions header (1.4)": Leniency(
        ("inform_cwmp-1-2_supported-cwmp-versions-header.xml",),
        lambda raw: b"SupportedCWMPVersions" in raw,
    ),
    "namespace urn:dslforum-org:cwmp-1-0": Leniency(
        ("inform_soap-env-prefix_cwmp-1-0_bootstrap.xml",), lambda raw: NS_CWMP_1_0.encode() in raw
    ),
    "namespace urn:dslforum-org:cwmp-1-1": Leniency(
        ("inform_soap-prefix_cwmp-1-1_periodic.xml", "empty-envelope_header-id-cwmp-1-1_whitespace-body.xml"),
        lambda raw: NS_CWMP_1_1.encode() in raw,
    ),
    "namespace urn:dslforum-org:cwmp-1-2": Leniency(
        ("inform_soapenv-prefix_cwmp-1-2_value-change.xml",), lambda raw: NS_CWMP_1_2.encode() in raw
    ),
    "non-standard namespace cwmp-1-3": Leniency(
        ("inform_nonstandard-cwmp-1-3-namespace.xml",), lambda raw: NS_CWMP_1_3.encode() in raw
    ),
    "non-standard namespace cwmp-1-4": Leniency(
        ("inform_nonstandard-cwmp-1-4-namespace.xml",), lambda raw: NS_CWMP_1_4.encode() in raw
    ),
    "unknown extra elements": Leniency(
        ("inform_unknown-extra-elements-and-attributes.xml",),
        lambda raw: bool(_unknown_elements(raw)),
    ),
    "unknown extra attributes": Leniency(
        ("inform_unknown-extra-elements-and-attributes.xml",),
        lambda raw: bool(_unknown_attributes(raw)),
    ),
    "qualified child elements": Leniency(
        ("inform_qualified-child-elements.xml", "inform_default-cwmp-namespace_on-rpc-element.xml",
         "inform_default-soap-namespace_children-inherit-it.xml"),
        _qualified_children,
    ),
}


@pytest.mark.parametrize("item", sorted(LENIENCY))
def test_leniency_item_is_exercised_by_corpus_files(item):
    leniency = LENIENCY[item]
    assert leniency.files, f"{item}: no file exercises it"
    for name in leniency.files:
        assert name in EXPECTED, f"{item}: {name} has no expectation"
        assert leniency.evidence((CORPUS / name).read_bytes()), f"{item}: {name} does not show it"


@pytest.mark.parametrize("item", sorted(LENIENCY))
def test_leniency_evidence_is_not_vacuous(item):
    """Each evidence check rejects at least one corpus file, so a check that accepts anything cannot hide a gap."""
    assert not all(LENIENCY[item].evidence((CORPUS / name).read_bytes()) for name in _corpus_files())
