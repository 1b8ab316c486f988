"""The WP820 phone simulator: a pure core (:mod:`.phone`, :mod:`.state`, :mod:`.quirks`) under a Twisted network
layer. The core's public names are re-exported here."""

from .phone import (
    Action,
    Credentials,
    DownloadAction,
    FactoryResetAction,
    PeriodicInform,
    Phone,
    PhoneError,
    RebootAction,
    ScheduleInformAction,
    StunSettings,
    UploadAction,
    firmware_image,
)
from .quirks import QuirkError, Quirks, serialize_for
from .state import PhoneState, StateError, Transfer, TransferResult, state_path

__all__ = [
    "Action",
    "Credentials",
    "DownloadAction",
    "FactoryResetAction",
    "PeriodicInform",
    "Phone",
    "PhoneError",
    "PhoneState",
    "QuirkError",
    "Quirks",
    "RebootAction",
    "ScheduleInformAction",
    "StateError",
    "StunSettings",
    "Transfer",
    "TransferResult",
    "UploadAction",
    "firmware_image",
    "serialize_for",
    "state_path",
]
