"""One schema-valid, fully populated instance of every CWMP message class (values chosen to satisfy the schema's
patterns and enumerations, which generic property-test data does not)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from cwmp_models import messages as m
from cwmp_models.types import UNKNOWN_TIME, XsdType

T0 = datetime(2026, 11, 27, 8, 30, 15, tzinfo=timezone.utc)
T1 = datetime(2026, 11, 27, 8, 30, 17, 250000, tzinfo=timezone(timedelta(hours=1)))
UUID = "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0"

DEVICE = m.DeviceId("Grandstream", "000B82", "WP820", "c074ad112233")

PARAMETERS = [
    m.ParameterValueStruct("Device.DeviceInfo.SoftwareVersion", "1.0.3.5"),
    m.ParameterValueStruct("Device.ManagementServer.PeriodicInformInterval", 86400, XsdType.UNSIGNED_INT),
    m.ParameterValueStruct("Device.X_Test.Int", -42, XsdType.INT),
    m.ParameterValueStruct("Device.X_Test.Long", -(2**40), XsdType.LONG),
    m.ParameterValueStruct("Device.X_Test.ULong", 2**63, XsdType.UNSIGNED_LONG),
    m.ParameterValueStruct("Device.UserInterface.X_GRANDSTREAM_DisableSSH", True, XsdType.BOOLEAN),
    m.ParameterValueStruct("Device.ManagementServer.PeriodicInformTime", T1, XsdType.DATETIME),
    m.ParameterValueStruct("Device.X_Test.Unknown", UNKNOWN_TIME, XsdType.DATETIME),
    m.ParameterValueStruct("Device.X_Test.Blob", b"\x00\x01binary\xff", XsdType.BASE64),
    m.ParameterValueStruct("Device.X_Test.Hex", b"\xde\xad\xbe\xef", XsdType.HEXBINARY),
    m.ParameterValueStruct("Device.X_Test.Markup", "a<b & c>d \"q\" 'a'\r\n"),
]

_OP_RESULT = dict(
    uuid=UUID,
    deployment_unit_ref="Device.SoftwareModules.DeploymentUnit.1",
    version="1.0",
    current_state="Installed",
    resolved=True,
    execution_unit_ref_list="Device.SoftwareModules.ExecutionUnit.1",
    start_time=T0,
    complete_time=T1,
    fault=m.DeploymentUnitFaultStruct(0, ""),
)

SAMPLES: dict[type, m.Message] = {
    m.GetRPCMethods: m.GetRPCMethods(),
    m.GetRPCMethodsResponse: m.GetRPCMethodsResponse(["GetRPCMethods", "Inform", "TransferComplete"]),
    m.SetParameterValues: m.SetParameterValues(PARAMETERS, "policy-3f2a9c"),
    m.SetParameterValuesResponse: m.SetParameterValuesResponse(1),
    m.GetParameterValues: m.GetParameterValues(["Device.DeviceInfo.", "Device.ManagementServer.URL"]),
    m.GetParameterValuesResponse: m.GetParameterValuesResponse(PARAMETERS),
    m.GetParameterNames: m.GetParameterNames("Device.ManagementServer.", True),
    m.GetParameterNamesResponse: m.GetParameterNamesResponse(
        [m.ParameterInfoStruct("Device.ManagementServer.URL", True), m.ParameterInfoStruct("Device.LAN.", False)]
    ),
    m.SetParameterAttributes: m.SetParameterAttributes(
        [
            m.SetParameterAttributesStruct("Device.UserInterface.X_GRANDSTREAM_DisableSSH", True, 2, False, []),
            m.SetParameterAttributesStruct("Device.LAN.IPAddress", False, 0, True, ["Subscriber"]),
        ]
    ),
    m.SetParameterAttributesResponse: m.SetParameterAttributesResponse(),
    m.GetParameterAttributes: m.GetParameterAttributes(["Device.ManagementServer."]),
    m.GetParameterAttributesResponse: m.GetParameterAttributesResponse(
        [m.ParameterAttributeStruct("Device.ManagementServer.ConnectionRequestURL", 2, ["Subscriber"])]
    ),
    m.AddObject: m.AddObject("Device.Services.VoiceService.1.VoiceProfile.", "add-1"),
    m.AddObjectResponse: m.AddObjectResponse(3, 0),
    m.DeleteObject: m.DeleteObject("Device.Services.VoiceService.1.VoiceProfile.3.", "del-1"),
    m.DeleteObjectResponse: m.DeleteObjectResponse(1),
    m.Reboot: m.Reboot("reboot-window-1"),
    m.RebootResponse: m.RebootResponse(),
    m.Download: m.Download(
        "cfg-3f2a9c",
        "3 Vendor Configuration File",
        "https://acs.example.net:7549/files/one-time/abc",
        "dl-user",
        "dl-pass",
        1234,
        "cfg.xml",
        0,
        "",
        "",
    ),
    m.DownloadResponse: m.DownloadResponse(1, UNKNOWN_TIME, UNKNOWN_TIME),
    m.Upload: m.Upload("up-1", "1 Vendor Configuration File", "https://acs.example.net/upload/x", "u", "p", 5),
    m.UploadResponse: m.UploadResponse(0, T0, T1),
    m.FactoryReset: m.FactoryReset(),
    m.FactoryResetResponse: m.FactoryResetResponse(),
    m.ScheduleInform: m.ScheduleInform(60, "later"),
    m.ScheduleInformResponse: m.ScheduleInformResponse(),
    m.ScheduleDownload: m.ScheduleDownload(
        "sched-1",
        "1 Firmware Upgrade Image",
        "https://fw.example.net/wp820fw.bin",
        "",
        "",
        0,
        "",
        [m.TimeWindowStruct(0, 3600, "1 At Any Time", "", -1), m.TimeWindowStruct(7200, 10800, "2 Immediately", "msg", 2)],
    ),
    m.ScheduleDownloadResponse: m.ScheduleDownloadResponse(),
    m.CancelTransfer: m.CancelTransfer("sched-1"),
    m.CancelTransferResponse: m.CancelTransferResponse(),
    m.GetQueuedTransfers: m.GetQueuedTransfers(),
    m.GetQueuedTransfersResponse: m.GetQueuedTransfersResponse([m.QueuedTransferStruct("cfg-1", 2)]),
    m.GetAllQueuedTransfers: m.GetAllQueuedTransfers(),
    m.GetAllQueuedTransfersResponse: m.GetAllQueuedTransfersResponse(
        [m.AllQueuedTransferStruct("cfg-1", 1, True, "3 Vendor Configuration File", 100, "cfg.xml")]
    ),
    m.ChangeDUState: m.ChangeDUState(
        [
            m.InstallOpStruct("https://apps.example.net/app.ipk", UUID, "u", "p", "Device.SoftwareModules.ExecEnv.1"),
            m.UpdateOpStruct(UUID, "2.0", "https://apps.example.net/app2.ipk", None, None),
            m.UninstallOpStruct(UUID, "2.0", None),
        ],
        "du-1",
    ),
    m.ChangeDUStateResponse: m.ChangeDUStateResponse(),
    m.Inform: m.Inform(
        DEVICE,
        [m.EventStruct("0 BOOTSTRAP"), m.EventStruct("1 BOOT"), m.EventStruct("M Reboot", "reboot-window-1")],
        1,
        T0,
        0,
        PARAMETERS,
    ),
    m.InformResponse: m.InformResponse(1),
    m.TransferComplete: m.TransferComplete("cfg-3f2a9c", m.FaultStruct(9010, "decryption failed"), T0, T1),
    m.TransferCompleteResponse: m.TransferCompleteResponse(),
    m.AutonomousTransferComplete: m.AutonomousTransferComplete(
        "", "https://fw.example.net/fw.bin", True, "1 Firmware Upgrade Image", 42, "fw.bin", m.FaultStruct(), T0, T1
    ),
    m.AutonomousTransferCompleteResponse: m.AutonomousTransferCompleteResponse(),
    m.RequestDownload: m.RequestDownload("3 Vendor Configuration File", [m.ArgStruct("Version", "1.0.3.5")]),
    m.RequestDownloadResponse: m.RequestDownloadResponse(),
    m.Kicked: m.Kicked("reset", "https://portal.example.net/", "a=b", "https://portal.example.net/next"),
    m.KickedResponse: m.KickedResponse("https://portal.example.net/done"),
    m.DUStateChangeComplete: m.DUStateChangeComplete([m.OpResultStruct(**_OP_RESULT)], "du-1"),
    m.DUStateChangeCompleteResponse: m.DUStateChangeCompleteResponse(),
    m.AutonomousDUStateChangeComplete: m.AutonomousDUStateChangeComplete(
        [m.AutonOpResultStruct(**_OP_RESULT, operation_performed="Install")]
    ),
    m.AutonomousDUStateChangeCompleteResponse: m.AutonomousDUStateChangeCompleteResponse(),
    m.Fault: m.Fault.of(
        9003,
        set_parameter_values_faults=[
            m.SetParameterValuesFault("Device.UserInterface.X_GRANDSTREAM_Port", 9007, "Invalid parameter value"),
            m.SetParameterValuesFault("Device.DeviceInfo.SerialNumber", 9008, "Attempt to set a non-writable parameter"),
        ],
    ),
}
