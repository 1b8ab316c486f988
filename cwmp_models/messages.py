"""Typed CWMP messages: every RPC of TR-069 Amendment 6 in both directions, their responses, and the Fault.

Each class is a plain dataclass whose ``FIELDS`` state, in schema order, how its attributes map to XML elements (see
:mod:`cwmp_models.schema`). Class attributes say where a message may travel:

* ``NAME``: the element name in the SOAP Body.
* ``SENDER``: ``"acs"``, ``"cpe"`` or ``"both"`` (GetRPCMethods may be sent either way).
* ``RESPONSE``: the class that answers a request (``None`` for responses).
* ``SINCE``: the first CWMP namespace (``"1-0"``, ``"1-1"``, ``"1-2"``) whose schema defines the element.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from .faults import fault_string, soap_fault_code
from .schema import (
    BOOL,
    DATETIME,
    INT,
    STR,
    UINT,
    VALUE,
    ArrayKind,
    ChoiceKind,
    Field,
    RepeatedKind,
    StructKind,
)
from .types import UNKNOWN_TIME, CwmpValue, XsdType

# --------------------------------------------------------------------------------------------------------------------
# Structures used inside messages
# --------------------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class DeviceId:
    manufacturer: str
    oui: str
    product_class: str
    serial_number: str

    FIELDS: ClassVar = (
        Field("manufacturer", "Manufacturer", STR, 64),
        Field("oui", "OUI", STR, 6),
        Field("product_class", "ProductClass", STR, 64),
        Field("serial_number", "SerialNumber", STR, 64),
    )

    @property
    def key(self) -> str:
        """The identity TR-069 uses for a device: OUI-ProductClass-SerialNumber."""
        return f"{self.oui}-{self.product_class}-{self.serial_number}"


@dataclass(slots=True)
class EventStruct:
    event_code: str
    command_key: str = ""

    FIELDS: ClassVar = (
        Field("event_code", "EventCode", STR, 64),
        Field("command_key", "CommandKey", STR, 32),
    )


@dataclass(slots=True)
class ParameterValueStruct:
    name: str
    value: CwmpValue
    type: XsdType = XsdType.STRING

    FIELDS: ClassVar = (
        Field("name", "Name", STR, 256),
        Field("value", "Value", VALUE),
    )


@dataclass(slots=True)
class ParameterInfoStruct:
    name: str
    writable: bool

    FIELDS: ClassVar = (
        Field("name", "Name", STR, 256),
        Field("writable", "Writable", BOOL),
    )


_ACCESS_LIST = ArrayKind("string", STR, "xsd:string", item_max_len=64)


@dataclass(slots=True)
class SetParameterAttributesStruct:
    name: str
    notification_change: bool
    notification: int
    access_list_change: bool = False
    access_list: list[str] = field(default_factory=list)

    FIELDS: ClassVar = (
        Field("name", "Name", STR, 256),
        Field("notification_change", "NotificationChange", BOOL),
        Field("notification", "Notification", INT),
        Field("access_list_change", "AccessListChange", BOOL),
        Field("access_list", "AccessList", _ACCESS_LIST),
    )


@dataclass(slots=True)
class ParameterAttributeStruct:
    name: str
    notification: int
    access_list: list[str] = field(default_factory=list)

    FIELDS: ClassVar = (
        Field("name", "Name", STR, 256),
        Field("notification", "Notification", INT),
        Field("access_list", "AccessList", _ACCESS_LIST),
    )


@dataclass(slots=True)
class FaultStruct:
    """TransferCompleteFaultStruct: fault code 0 means success."""

    fault_code: int = 0
    fault_string: str = ""

    FIELDS: ClassVar = (
        Field("fault_code", "FaultCode", UINT),
        Field("fault_string", "FaultString", STR, 256),
    )


@dataclass(slots=True)
class TimeWindowStruct:
    window_start: int
    window_end: int
    window_mode: str
    user_message: str = ""
    max_retries: int = -1

    FIELDS: ClassVar = (
        Field("window_start", "WindowStart", UINT),
        Field("window_end", "WindowEnd", UINT),
        Field("window_mode", "WindowMode", STR, 64),
        Field("user_message", "UserMessage", STR, 256),
        Field("max_retries", "MaxRetries", INT),
    )


@dataclass(slots=True)
class QueuedTransferStruct:
    command_key: str
    state: int

    FIELDS: ClassVar = (
        Field("command_key", "CommandKey", STR, 32),
        Field("state", "State", INT),
    )


@dataclass(slots=True)
class AllQueuedTransferStruct:
    command_key: str
    state: int
    is_download: bool
    file_type: str
    file_size: int
    target_file_name: str

    FIELDS: ClassVar = (
        Field("command_key", "CommandKey", STR, 32),
        Field("state", "State", INT),
        Field("is_download", "IsDownload", BOOL),
        Field("file_type", "FileType", STR, 64),
        Field("file_size", "FileSize", UINT),
        Field("target_file_name", "TargetFileName", STR, 256),
    )


@dataclass(slots=True)
class ArgStruct:
    name: str
    value: str

    FIELDS: ClassVar = (
        Field("name", "Name", STR, 64),
        Field("value", "Value", STR, 256),
    )


@dataclass(slots=True)
class InstallOpStruct:
    url: str
    uuid: str | None = None
    username: str | None = None
    password: str | None = None
    execution_env_ref: str | None = None

    FIELDS: ClassVar = (
        Field("url", "URL", STR, 1024),
        Field("uuid", "UUID", STR, optional=True),
        Field("username", "Username", STR, 256, optional=True),
        Field("password", "Password", STR, 256, optional=True),
        Field("execution_env_ref", "ExecutionEnvRef", STR, 256, optional=True),
    )


@dataclass(slots=True)
class UpdateOpStruct:
    uuid: str | None = None
    version: str | None = None
    url: str | None = None
    username: str | None = None
    password: str | None = None

    FIELDS: ClassVar = (
        Field("uuid", "UUID", STR, optional=True),
        Field("version", "Version", STR, 32, optional=True),
        Field("url", "URL", STR, 1024, optional=True),
        Field("username", "Username", STR, 256, optional=True),
        Field("password", "Password", STR, 256, optional=True),
    )


@dataclass(slots=True)
class UninstallOpStruct:
    uuid: str
    version: str | None = None
    execution_env_ref: str | None = None

    FIELDS: ClassVar = (
        Field("uuid", "UUID", STR),
        Field("version", "Version", STR, 32, optional=True),
        Field("execution_env_ref", "ExecutionEnvRef", STR, 256, optional=True),
    )


@dataclass(slots=True)
class DeploymentUnitFaultStruct:
    fault_code: int = 0
    fault_string: str | None = None

    FIELDS: ClassVar = (
        Field("fault_code", "FaultCode", UINT),
        Field("fault_string", "FaultString", STR, optional=True),
    )


_OP_RESULT_FIELDS = (
    Field("uuid", "UUID", STR),
    Field("deployment_unit_ref", "DeploymentUnitRef", STR),
    Field("version", "Version", STR, 32),
    Field("current_state", "CurrentState", STR),
    Field("resolved", "Resolved", BOOL),
    Field("execution_unit_ref_list", "ExecutionUnitRefList", STR),
    Field("start_time", "StartTime", DATETIME),
    Field("complete_time", "CompleteTime", DATETIME),
    Field("fault", "Fault", StructKind(DeploymentUnitFaultStruct)),
)


@dataclass(slots=True)
class OpResultStruct:
    uuid: str
    deployment_unit_ref: str
    version: str
    current_state: str
    resolved: bool
    execution_unit_ref_list: str
    start_time: datetime
    complete_time: datetime
    fault: DeploymentUnitFaultStruct = field(default_factory=DeploymentUnitFaultStruct)

    FIELDS: ClassVar = _OP_RESULT_FIELDS


@dataclass(slots=True)
class AutonOpResultStruct:
    uuid: str
    deployment_unit_ref: str
    version: str
    current_state: str
    resolved: bool
    execution_unit_ref_list: str
    start_time: datetime
    complete_time: datetime
    fault: DeploymentUnitFaultStruct
    operation_performed: str

    FIELDS: ClassVar = _OP_RESULT_FIELDS + (Field("operation_performed", "OperationPerformed", STR),)


@dataclass(slots=True)
class SetParameterValuesFault:
    parameter_name: str
    fault_code: int
    fault_string: str = ""

    FIELDS: ClassVar = (
        Field("parameter_name", "ParameterName", STR),
        Field("fault_code", "FaultCode", UINT),
        Field("fault_string", "FaultString", STR, optional=True),
    )


# --------------------------------------------------------------------------------------------------------------------
# Array kinds shared by several messages
# --------------------------------------------------------------------------------------------------------------------

PARAMETER_VALUE_LIST = ArrayKind("ParameterValueStruct", StructKind(ParameterValueStruct), "cwmp:ParameterValueStruct")
PARAMETER_NAMES = ArrayKind("string", STR, "xsd:string", item_max_len=256)
_EVENT_LIST = ArrayKind("EventStruct", StructKind(EventStruct), "cwmp:EventStruct", max_items=64)
_METHOD_LIST = ArrayKind("string", STR, "xsd:string", item_max_len=64)
_PARAMETER_INFO_LIST = ArrayKind("ParameterInfoStruct", StructKind(ParameterInfoStruct), "cwmp:ParameterInfoStruct")
_SET_ATTRIBUTES_LIST = ArrayKind(
    "SetParameterAttributesStruct", StructKind(SetParameterAttributesStruct), "cwmp:SetParameterAttributesStruct"
)
_ATTRIBUTE_LIST = ArrayKind(
    "ParameterAttributeStruct", StructKind(ParameterAttributeStruct), "cwmp:ParameterAttributeStruct"
)
_TIME_WINDOW_LIST = ArrayKind("TimeWindowStruct", StructKind(TimeWindowStruct), "cwmp:TimeWindowStruct", max_items=2)
_TRANSFER_LIST = ArrayKind(
    "QueuedTransferStruct", StructKind(QueuedTransferStruct), "cwmp:QueuedTransferStruct", max_items=16
)
_ALL_TRANSFER_LIST = ArrayKind(
    "AllQueuedTransferStruct", StructKind(AllQueuedTransferStruct), "cwmp:AllQueuedTransferStruct", max_items=16
)
_FILE_TYPE_ARG = ArrayKind("ArgStruct", StructKind(ArgStruct), "cwmp:ArgStruct", max_items=16)
_OPERATIONS = RepeatedKind(
    ChoiceKind(
        (
            ("InstallOpStruct", InstallOpStruct),
            ("UpdateOpStruct", UpdateOpStruct),
            ("UninstallOpStruct", UninstallOpStruct),
        )
    )
)

# --------------------------------------------------------------------------------------------------------------------
# Messages
# --------------------------------------------------------------------------------------------------------------------


class Message:
    """Marker base for everything that can stand alone in a SOAP Body."""

    __slots__ = ()
    NAME: ClassVar[str]
    SENDER: ClassVar[str]
    RESPONSE: ClassVar[type["Message"] | None] = None
    SINCE: ClassVar[str] = "1-0"
    FIELDS: ClassVar[tuple[Field, ...]] = ()

    @property
    def is_response(self) -> bool:
        return self.NAME.endswith("Response")


def _message(name: str, sender: str, since: str = "1-0", response: type[Message] | None = None):
    """Class decorator filling the class attributes, so each message reads as its field list only."""

    def wrap(cls):
        cls.NAME = name
        cls.SENDER = sender
        cls.SINCE = since
        cls.RESPONSE = response
        return cls

    return wrap


# ---- responses first, so requests can name them ---------------------------------------------------------------------


@_message("GetRPCMethodsResponse", "both")
@dataclass(slots=True)
class GetRPCMethodsResponse(Message):
    method_list: list[str] = field(default_factory=list)
    FIELDS: ClassVar = (Field("method_list", "MethodList", _METHOD_LIST),)


@_message("SetParameterValuesResponse", "cpe")
@dataclass(slots=True)
class SetParameterValuesResponse(Message):
    status: int = 0  # 1: applied, but only takes effect after a reboot or other action
    FIELDS: ClassVar = (Field("status", "Status", INT),)


@_message("GetParameterValuesResponse", "cpe")
@dataclass(slots=True)
class GetParameterValuesResponse(Message):
    parameter_list: list[ParameterValueStruct] = field(default_factory=list)
    FIELDS: ClassVar = (Field("parameter_list", "ParameterList", PARAMETER_VALUE_LIST),)


@_message("GetParameterNamesResponse", "cpe")
@dataclass(slots=True)
class GetParameterNamesResponse(Message):
    parameter_list: list[ParameterInfoStruct] = field(default_factory=list)
    FIELDS: ClassVar = (Field("parameter_list", "ParameterList", _PARAMETER_INFO_LIST),)


@_message("SetParameterAttributesResponse", "cpe")
@dataclass(slots=True)
class SetParameterAttributesResponse(Message):
    pass


@_message("GetParameterAttributesResponse", "cpe")
@dataclass(slots=True)
class GetParameterAttributesResponse(Message):
    parameter_list: list[ParameterAttributeStruct] = field(default_factory=list)
    FIELDS: ClassVar = (Field("parameter_list", "ParameterList", _ATTRIBUTE_LIST),)


@_message("AddObjectResponse", "cpe")
@dataclass(slots=True)
class AddObjectResponse(Message):
    instance_number: int
    status: int = 0
    FIELDS: ClassVar = (Field("instance_number", "InstanceNumber", UINT), Field("status", "Status", INT))


@_message("DeleteObjectResponse", "cpe")
@dataclass(slots=True)
class DeleteObjectResponse(Message):
    status: int = 0
    FIELDS: ClassVar = (Field("status", "Status", INT),)


@_message("RebootResponse", "cpe")
@dataclass(slots=True)
class RebootResponse(Message):
    pass


@_message("DownloadResponse", "cpe")
@dataclass(slots=True)
class DownloadResponse(Message):
    status: int = 1  # 1: the transfer will complete later and be reported by TransferComplete
    start_time: datetime = UNKNOWN_TIME
    complete_time: datetime = UNKNOWN_TIME
    FIELDS: ClassVar = (
        Field("status", "Status", INT),
        Field("start_time", "StartTime", DATETIME),
        Field("complete_time", "CompleteTime", DATETIME),
    )


@_message("UploadResponse", "cpe")
@dataclass(slots=True)
class UploadResponse(Message):
    status: int = 1
    start_time: datetime = UNKNOWN_TIME
    complete_time: datetime = UNKNOWN_TIME
    FIELDS: ClassVar = DownloadResponse.FIELDS


@_message("FactoryResetResponse", "cpe")
@dataclass(slots=True)
class FactoryResetResponse(Message):
    pass


@_message("ScheduleInformResponse", "cpe")
@dataclass(slots=True)
class ScheduleInformResponse(Message):
    pass


@_message("ScheduleDownloadResponse", "cpe", since="1-2")
@dataclass(slots=True)
class ScheduleDownloadResponse(Message):
    pass


@_message("CancelTransferResponse", "cpe", since="1-2")
@dataclass(slots=True)
class CancelTransferResponse(Message):
    pass


@_message("GetQueuedTransfersResponse", "cpe")
@dataclass(slots=True)
class GetQueuedTransfersResponse(Message):
    transfer_list: list[QueuedTransferStruct] = field(default_factory=list)
    FIELDS: ClassVar = (Field("transfer_list", "TransferList", _TRANSFER_LIST),)


@_message("GetAllQueuedTransfersResponse", "cpe", since="1-1")
@dataclass(slots=True)
class GetAllQueuedTransfersResponse(Message):
    transfer_list: list[AllQueuedTransferStruct] = field(default_factory=list)
    FIELDS: ClassVar = (Field("transfer_list", "TransferList", _ALL_TRANSFER_LIST),)


@_message("ChangeDUStateResponse", "cpe", since="1-2")
@dataclass(slots=True)
class ChangeDUStateResponse(Message):
    pass


@_message("InformResponse", "acs")
@dataclass(slots=True)
class InformResponse(Message):
    max_envelopes: int = 1
    FIELDS: ClassVar = (Field("max_envelopes", "MaxEnvelopes", UINT),)


@_message("TransferCompleteResponse", "acs")
@dataclass(slots=True)
class TransferCompleteResponse(Message):
    pass


@_message("AutonomousTransferCompleteResponse", "acs", since="1-1")
@dataclass(slots=True)
class AutonomousTransferCompleteResponse(Message):
    pass


@_message("RequestDownloadResponse", "acs")
@dataclass(slots=True)
class RequestDownloadResponse(Message):
    pass


@_message("KickedResponse", "acs")
@dataclass(slots=True)
class KickedResponse(Message):
    next_url: str = ""
    FIELDS: ClassVar = (Field("next_url", "NextURL", STR, 1024),)


@_message("DUStateChangeCompleteResponse", "acs", since="1-2")
@dataclass(slots=True)
class DUStateChangeCompleteResponse(Message):
    pass


@_message("AutonomousDUStateChangeCompleteResponse", "acs", since="1-2")
@dataclass(slots=True)
class AutonomousDUStateChangeCompleteResponse(Message):
    pass


# ---- ACS -> CPE requests --------------------------------------------------------------------------------------------


@_message("GetRPCMethods", "both", response=GetRPCMethodsResponse)
@dataclass(slots=True)
class GetRPCMethods(Message):
    pass


@_message("SetParameterValues", "acs", response=SetParameterValuesResponse)
@dataclass(slots=True)
class SetParameterValues(Message):
    parameter_list: list[ParameterValueStruct] = field(default_factory=list)
    parameter_key: str = ""
    FIELDS: ClassVar = (
        Field("parameter_list", "ParameterList", PARAMETER_VALUE_LIST),
        Field("parameter_key", "ParameterKey", STR, 32),
    )


@_message("GetParameterValues", "acs", response=GetParameterValuesResponse)
@dataclass(slots=True)
class GetParameterValues(Message):
    parameter_names: list[str] = field(default_factory=list)
    FIELDS: ClassVar = (Field("parameter_names", "ParameterNames", PARAMETER_NAMES),)


@_message("GetParameterNames", "acs", response=GetParameterNamesResponse)
@dataclass(slots=True)
class GetParameterNames(Message):
    parameter_path: str = ""
    next_level: bool = False
    FIELDS: ClassVar = (
        Field("parameter_path", "ParameterPath", STR, 256),
        Field("next_level", "NextLevel", BOOL),
    )


@_message("SetParameterAttributes", "acs", response=SetParameterAttributesResponse)
@dataclass(slots=True)
class SetParameterAttributes(Message):
    parameter_list: list[SetParameterAttributesStruct] = field(default_factory=list)
    FIELDS: ClassVar = (Field("parameter_list", "ParameterList", _SET_ATTRIBUTES_LIST),)


@_message("GetParameterAttributes", "acs", response=GetParameterAttributesResponse)
@dataclass(slots=True)
class GetParameterAttributes(Message):
    parameter_names: list[str] = field(default_factory=list)
    FIELDS: ClassVar = (Field("parameter_names", "ParameterNames", PARAMETER_NAMES),)


@_message("AddObject", "acs", response=AddObjectResponse)
@dataclass(slots=True)
class AddObject(Message):
    object_name: str
    parameter_key: str = ""
    FIELDS: ClassVar = (
        Field("object_name", "ObjectName", STR, 256),
        Field("parameter_key", "ParameterKey", STR, 32),
    )


@_message("DeleteObject", "acs", response=DeleteObjectResponse)
@dataclass(slots=True)
class DeleteObject(Message):
    object_name: str
    parameter_key: str = ""
    FIELDS: ClassVar = AddObject.FIELDS


@_message("Reboot", "acs", response=RebootResponse)
@dataclass(slots=True)
class Reboot(Message):
    command_key: str = ""
    FIELDS: ClassVar = (Field("command_key", "CommandKey", STR, 32),)


@_message("Download", "acs", response=DownloadResponse)
@dataclass(slots=True)
class Download(Message):
    command_key: str
    file_type: str
    url: str
    username: str = ""
    password: str = ""
    file_size: int = 0
    target_file_name: str = ""
    delay_seconds: int = 0
    success_url: str = ""
    failure_url: str = ""
    FIELDS: ClassVar = (
        Field("command_key", "CommandKey", STR, 32),
        Field("file_type", "FileType", STR, 64),
        Field("url", "URL", STR, 256),
        Field("username", "Username", STR, 256),
        Field("password", "Password", STR, 256),
        Field("file_size", "FileSize", UINT),
        Field("target_file_name", "TargetFileName", STR, 256),
        Field("delay_seconds", "DelaySeconds", UINT),
        Field("success_url", "SuccessURL", STR, 256),
        Field("failure_url", "FailureURL", STR, 256),
    )


@_message("Upload", "acs", response=UploadResponse)
@dataclass(slots=True)
class Upload(Message):
    command_key: str
    file_type: str
    url: str
    username: str = ""
    password: str = ""
    delay_seconds: int = 0
    FIELDS: ClassVar = (
        Field("command_key", "CommandKey", STR, 32),
        Field("file_type", "FileType", STR, 64),
        Field("url", "URL", STR, 256),
        Field("username", "Username", STR, 256),
        Field("password", "Password", STR, 256),
        Field("delay_seconds", "DelaySeconds", UINT),
    )


@_message("FactoryReset", "acs", response=FactoryResetResponse)
@dataclass(slots=True)
class FactoryReset(Message):
    pass


@_message("ScheduleInform", "acs", response=ScheduleInformResponse)
@dataclass(slots=True)
class ScheduleInform(Message):
    delay_seconds: int
    command_key: str = ""
    FIELDS: ClassVar = (
        Field("delay_seconds", "DelaySeconds", UINT),
        Field("command_key", "CommandKey", STR, 32),
    )


@_message("ScheduleDownload", "acs", since="1-2", response=ScheduleDownloadResponse)
@dataclass(slots=True)
class ScheduleDownload(Message):
    command_key: str
    file_type: str
    url: str
    username: str = ""
    password: str = ""
    file_size: int = 0
    target_file_name: str = ""
    time_window_list: list[TimeWindowStruct] = field(default_factory=list)
    FIELDS: ClassVar = (
        Field("command_key", "CommandKey", STR, 32),
        Field("file_type", "FileType", STR, 64),
        Field("url", "URL", STR, 256),
        Field("username", "Username", STR, 256),
        Field("password", "Password", STR, 256),
        Field("file_size", "FileSize", UINT),
        Field("target_file_name", "TargetFileName", STR, 256),
        Field("time_window_list", "TimeWindowList", _TIME_WINDOW_LIST),
    )


@_message("CancelTransfer", "acs", since="1-2", response=CancelTransferResponse)
@dataclass(slots=True)
class CancelTransfer(Message):
    command_key: str = ""
    FIELDS: ClassVar = (Field("command_key", "CommandKey", STR, 32),)


@_message("GetQueuedTransfers", "acs", response=GetQueuedTransfersResponse)
@dataclass(slots=True)
class GetQueuedTransfers(Message):
    pass


@_message("GetAllQueuedTransfers", "acs", since="1-1", response=GetAllQueuedTransfersResponse)
@dataclass(slots=True)
class GetAllQueuedTransfers(Message):
    pass


OperationStruct = InstallOpStruct | UpdateOpStruct | UninstallOpStruct


@_message("ChangeDUState", "acs", since="1-2", response=ChangeDUStateResponse)
@dataclass(slots=True)
class ChangeDUState(Message):
    operations: list[OperationStruct] = field(default_factory=list)
    command_key: str | None = None
    FIELDS: ClassVar = (
        Field("operations", "Operations", _OPERATIONS),
        Field("command_key", "CommandKey", STR, 32, optional=True),
    )


# ---- CPE -> ACS requests --------------------------------------------------------------------------------------------


@_message("Inform", "cpe", response=InformResponse)
@dataclass(slots=True)
class Inform(Message):
    device_id: DeviceId
    event: list[EventStruct] = field(default_factory=list)
    max_envelopes: int = 1
    current_time: datetime = UNKNOWN_TIME
    retry_count: int = 0
    parameter_list: list[ParameterValueStruct] = field(default_factory=list)
    FIELDS: ClassVar = (
        Field("device_id", "DeviceId", StructKind(DeviceId)),
        Field("event", "Event", _EVENT_LIST),
        Field("max_envelopes", "MaxEnvelopes", UINT),
        Field("current_time", "CurrentTime", DATETIME),
        Field("retry_count", "RetryCount", UINT),
        Field("parameter_list", "ParameterList", PARAMETER_VALUE_LIST),
    )

    @property
    def event_codes(self) -> list[str]:
        return [e.event_code for e in self.event]

    def parameter(self, name: str) -> CwmpValue | None:
        for item in self.parameter_list:
            if item.name == name:
                return item.value
        return None


@_message("TransferComplete", "cpe", response=TransferCompleteResponse)
@dataclass(slots=True)
class TransferComplete(Message):
    command_key: str = ""
    fault_struct: FaultStruct = field(default_factory=FaultStruct)
    start_time: datetime = UNKNOWN_TIME
    complete_time: datetime = UNKNOWN_TIME
    FIELDS: ClassVar = (
        Field("command_key", "CommandKey", STR, 32),
        Field("fault_struct", "FaultStruct", StructKind(FaultStruct)),
        Field("start_time", "StartTime", DATETIME),
        Field("complete_time", "CompleteTime", DATETIME),
    )


@_message("AutonomousTransferComplete", "cpe", since="1-1", response=AutonomousTransferCompleteResponse)
@dataclass(slots=True)
class AutonomousTransferComplete(Message):
    announce_url: str = ""
    transfer_url: str = ""
    is_download: bool = True
    file_type: str = ""
    file_size: int = 0
    target_file_name: str = ""
    fault_struct: FaultStruct = field(default_factory=FaultStruct)
    start_time: datetime = UNKNOWN_TIME
    complete_time: datetime = UNKNOWN_TIME
    FIELDS: ClassVar = (
        Field("announce_url", "AnnounceURL", STR, 1024),
        Field("transfer_url", "TransferURL", STR, 1024),
        Field("is_download", "IsDownload", BOOL),
        Field("file_type", "FileType", STR, 64),
        Field("file_size", "FileSize", UINT),
        Field("target_file_name", "TargetFileName", STR, 256),
        Field("fault_struct", "FaultStruct", StructKind(FaultStruct)),
        Field("start_time", "StartTime", DATETIME),
        Field("complete_time", "CompleteTime", DATETIME),
    )


@_message("RequestDownload", "cpe", response=RequestDownloadResponse)
@dataclass(slots=True)
class RequestDownload(Message):
    file_type: str
    file_type_arg: list[ArgStruct] = field(default_factory=list)
    FIELDS: ClassVar = (
        Field("file_type", "FileType", STR, 64),
        Field("file_type_arg", "FileTypeArg", _FILE_TYPE_ARG),
    )


@_message("Kicked", "cpe", response=KickedResponse)
@dataclass(slots=True)
class Kicked(Message):
    command: str
    referer: str = ""
    arg: str = ""
    next: str = ""
    FIELDS: ClassVar = (
        Field("command", "Command", STR, 32),
        Field("referer", "Referer", STR, 64),
        Field("arg", "Arg", STR, 256),
        Field("next", "Next", STR, 1024),
    )


@_message("DUStateChangeComplete", "cpe", since="1-2", response=DUStateChangeCompleteResponse)
@dataclass(slots=True)
class DUStateChangeComplete(Message):
    results: list[OpResultStruct] = field(default_factory=list)
    command_key: str | None = None
    FIELDS: ClassVar = (
        Field("results", "Results", RepeatedKind(StructKind(OpResultStruct))),
        Field("command_key", "CommandKey", STR, 32, optional=True),
    )


@_message(
    "AutonomousDUStateChangeComplete", "cpe", since="1-2", response=AutonomousDUStateChangeCompleteResponse
)
@dataclass(slots=True)
class AutonomousDUStateChangeComplete(Message):
    results: list[AutonOpResultStruct] = field(default_factory=list)
    FIELDS: ClassVar = (Field("results", "Results", RepeatedKind(StructKind(AutonOpResultStruct))),)


# ---- Fault ---------------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Fault(Message):
    """A SOAP Fault carrying a CWMP Fault in its detail. Either side may send one in place of a response (or, from
    the ACS, in answer to a CPE request)."""

    fault_code: int
    fault_string: str = ""
    set_parameter_values_faults: list[SetParameterValuesFault] = field(default_factory=list)

    NAME: ClassVar = "Fault"
    SENDER: ClassVar = "both"
    FIELDS: ClassVar = (
        Field("fault_code", "FaultCode", UINT),
        Field("fault_string", "FaultString", STR, optional=True),
        Field("set_parameter_values_faults", "SetParameterValuesFault", RepeatedKind(StructKind(SetParameterValuesFault))),
    )

    @classmethod
    def of(cls, code: int, detail: str | None = None, **kwargs) -> "Fault":
        """A fault with its standard string (or a more specific one)."""
        return cls(code, detail or fault_string(code), **kwargs)

    @property
    def soap_fault_code(self) -> str:
        return soap_fault_code(self.fault_code)


ALL_MESSAGES: tuple[type[Message], ...] = tuple(
    cls
    for cls in list(globals().values())
    if isinstance(cls, type) and issubclass(cls, Message) and cls is not Message
)
BY_NAME: dict[str, type[Message]] = {cls.NAME: cls for cls in ALL_MESSAGES}
