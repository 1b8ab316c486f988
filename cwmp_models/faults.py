"""CWMP fault codes (TR-069 Amendment 6, tables 5 and 6) with their standard strings."""

from __future__ import annotations

import enum


class FaultCode(enum.IntEnum):
    # ACS fault codes (sent by the ACS in answer to a CPE request).
    METHOD_NOT_SUPPORTED = 8000
    REQUEST_DENIED = 8001
    INTERNAL_ERROR = 8002
    INVALID_ARGUMENTS = 8003
    RESOURCES_EXCEEDED = 8004
    RETRY_REQUEST = 8005
    ACS_VERSION_INCOMPATIBLE = 8006
    # CPE fault codes.
    CPE_METHOD_NOT_SUPPORTED = 9000
    CPE_REQUEST_DENIED = 9001
    CPE_INTERNAL_ERROR = 9002
    CPE_INVALID_ARGUMENTS = 9003
    CPE_RESOURCES_EXCEEDED = 9004
    INVALID_PARAMETER_NAME = 9005
    INVALID_PARAMETER_TYPE = 9006
    INVALID_PARAMETER_VALUE = 9007
    NON_WRITABLE_PARAMETER = 9008
    NOTIFICATION_REQUEST_REJECTED = 9009
    DOWNLOAD_FAILURE = 9010
    UPLOAD_FAILURE = 9011
    FILE_TRANSFER_AUTH_FAILURE = 9012
    UNSUPPORTED_TRANSFER_PROTOCOL = 9013
    DOWNLOAD_MULTICAST_JOIN_FAILED = 9014
    DOWNLOAD_SERVER_UNREACHABLE = 9015
    DOWNLOAD_FILE_UNAVAILABLE = 9016
    DOWNLOAD_INCOMPLETE = 9017
    DOWNLOAD_FILE_CORRUPTED = 9018
    DOWNLOAD_FILE_AUTH_FAILURE = 9019
    DOWNLOAD_WINDOW_FAILED = 9020
    CANCELATION_NOT_PERMITTED = 9021
    INVALID_UUID_FORMAT = 9022
    UNKNOWN_EXECUTION_ENVIRONMENT = 9023
    DISABLED_EXECUTION_ENVIRONMENT = 9024
    DEPLOYMENT_UNIT_EE_MISMATCH = 9025
    DUPLICATE_DEPLOYMENT_UNIT = 9026
    SYSTEM_RESOURCES_EXCEEDED = 9027
    UNKNOWN_DEPLOYMENT_UNIT = 9028
    INVALID_DEPLOYMENT_UNIT_STATE = 9029
    INVALID_DU_UPDATE_DOWNGRADE = 9030
    INVALID_DU_UPDATE_NO_VERSION = 9031
    INVALID_DU_UPDATE_VERSION_EXISTS = 9032


FAULT_STRINGS: dict[int, str] = {
    8000: "Method not supported",
    8001: "Request denied (no reason specified)",
    8002: "Internal error",
    8003: "Invalid arguments",
    8004: "Resources exceeded",
    8005: "Retry request",
    8006: "ACS version incompatible with CPE",
    9000: "Method not supported",
    9001: "Request denied (no reason specified)",
    9002: "Internal error",
    9003: "Invalid arguments",
    9004: "Resources exceeded",
    9005: "Invalid parameter name",
    9006: "Invalid parameter type",
    9007: "Invalid parameter value",
    9008: "Attempt to set a non-writable parameter",
    9009: "Notification request rejected",
    9010: "File transfer failure",
    9011: "Upload failure",
    9012: "File transfer server authentication failure",
    9013: "Unsupported protocol for file transfer",
    9014: "File transfer failure: unable to join multicast group",
    9015: "File transfer failure: unable to contact file server",
    9016: "File transfer failure: unable to access file",
    9017: "File transfer failure: unable to complete download",
    9018: "File transfer failure: file corrupted or otherwise unusable",
    9019: "File transfer failure: file authentication failure",
    9020: "File transfer failure: unable to complete download within specified time windows",
    9021: "Cancelation of file transfer not permitted in current transfer state",
    9022: "Invalid UUID Format",
    9023: "Unknown Execution Environment",
    9024: "Disabled Execution Environment",
    9025: "Deployment Unit to Execution Environment Mismatch",
    9026: "Duplicate Deployment Unit",
    9027: "System Resources Exceeded",
    9028: "Unknown Deployment Unit",
    9029: "Invalid Deployment Unit State",
    9030: "Invalid Deployment Unit Update - Downgrade not permitted",
    9031: "Invalid Deployment Unit Update - Version not specified",
    9032: "Invalid Deployment Unit Update - Version already exists",
}

# Faults caused by the content of the request are "Client" faults in SOAP terms; the rest are "Server" faults.
CLIENT_FAULTS = frozenset({8003, 8005, 8006, 9003, 9005, 9006, 9007, 9008, 9009, 9022, 9030, 9031, 9032})


def fault_string(code: int) -> str:
    if code in FAULT_STRINGS:
        return FAULT_STRINGS[code]
    if 9800 <= code <= 9899 or 8800 <= code <= 8899:
        return "Vendor defined fault"
    return "Unknown fault"


def soap_fault_code(code: int) -> str:
    return "Client" if code in CLIENT_FAULTS else "Server"
