"""Structured logging: JSON lines for services, key=value on a terminal, secrets masked, Twisted routed in.

The structlog pipeline, in order: context variables (``structlog.contextvars``) -> level -> ISO UTC timestamp ->
secret masking -> exception rendering -> renderer. Per-session context (``device_id``, ``session_id``) is bound once
with ``session_logger`` and carried by the bound logger.

Exceptions: in JSON a traceback is one string field, ``exception``. On a console, below debug level, only
``error="ValueError: message"`` is shown: operators read the log, developers turn on debug for tracebacks.

Which keys are secrets (``is_secret_name``). A key is split into lower-case words (on ``_ - .`` and camelCase:
``X_GRANDSTREAM_AdminPassword`` -> x, grandstream, admin, password). It is a secret when

* one of its words is a secret word: password(s), passwd, passphrase, secret(s), token(s), authorization, psk,
  ha1 (a Digest HA1 is as good as the password), cookie; or
* it has the word ``key`` right after a word that makes it key material: private, secret, shared, api, aes,
  encryption, master, session, wep, signing, hmac, vault, access (``PreSharedKey``, ``private_key``, ``WEPKey``);

unless its last word says it only describes a secret: file, path, dir, name(s), id(s), ttl, length, enabled, set,
algorithm(s), type, version, count (``token_file``, ``password_length``, ``secret_name``).

So ``key`` alone, ``ParameterKey``, ``CommandKey``, ``device_id`` and ``session_id`` are not secrets: TR-069's
ParameterKey and CommandKey are correlation tags the ACS itself chooses. Values of secret keys become ``***``,
recursively in dicts, lists and tuples, so a parameter map ``{"Device.ManagementServer.Password": ...}`` is masked
too. Values that are not keyed by name (a password inside a free-text event message, or Grandstream's P-value
``P2`` which holds the admin password) cannot be recognised here: never log them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Mapping
from functools import lru_cache
from types import TracebackType
from typing import Any, TextIO

import structlog
from structlog.typing import EventDict, WrappedLogger

MASK = "***"
LEVELS = ("debug", "info", "warning", "error", "critical")
FORMATS = ("auto", "json", "console")

_SECRET_WORDS = frozenset(
    {"password", "passwords", "passwd", "passphrase", "secret", "secrets", "token", "tokens", "authorization", "psk"}
    | {"ha1", "cookie"}
)
_KEY_MATERIAL = frozenset(
    {"private", "secret", "shared", "api", "aes", "encryption", "master", "session", "wep", "signing", "hmac"}
    | {"vault", "access"}
)
_DESCRIPTIVE_LAST_WORDS = frozenset(
    {"file", "path", "dir", "name", "names", "id", "ids", "ttl", "length", "enabled", "set", "algorithm"}
    | {"algorithms", "type", "version", "count"}
)
# An upper-case run that is not the start of a capitalised word (WEP in WEPKey), a capitalised or lower-case word,
# or a number; trailing digits stay with their word (HA1, P2).
_WORD = re.compile(r"[A-Z]+(?![a-z])\d*|[A-Z]?[a-z]+\d*|\d+")


@lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """Whether a log key (or a TR-069 parameter name) holds secret material. See the module docstring."""
    words = [word.lower() for word in _WORD.findall(name)]
    if not words or words[-1] in _DESCRIPTIVE_LAST_WORDS:
        return False
    if any(word in _SECRET_WORDS for word in words):
        return True
    return any(word == "key" and index > 0 and words[index - 1] in _KEY_MATERIAL for index, word in enumerate(words))


def mask_secrets(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor: replace the values of secret keys by ``***``, at any depth."""
    return {key: MASK if is_secret_name(key) else _masked(value) for key, value in event_dict.items()}


# Nearly every logged value is one of these; they are returned before the (slow, ABC-based) Mapping check.
_PLAIN = frozenset({str, int, float, bool, type(None)})


def _masked(value: Any) -> Any:
    if value.__class__ in _PLAIN:
        return value
    if isinstance(value, Mapping):
        return {key: MASK if isinstance(key, str) and is_secret_name(key) else _masked(v) for key, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_masked(item) for item in value) if not _is_namedtuple(value) else value
    return value


def _is_namedtuple(value: Any) -> bool:
    # Rebuilding a namedtuple from a generator fails; its fields are attributes, not keys, so leave it whole.
    return isinstance(value, tuple) and hasattr(value, "_fields")


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def _exc_info(value: Any) -> ExcInfo | None:
    if isinstance(value, BaseException):
        return type(value), value, value.__traceback__
    if isinstance(value, tuple) and len(value) == 3 and value[0] is not None:
        return value  # type: ignore[return-value]
    if value is True:
        current = sys.exc_info()
        return current if current[0] is not None else None  # type: ignore[return-value]
    return None


def summarise_exception(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    """structlog processor for consoles below debug: the exception as ``error="Type: message"``, no traceback."""
    info = _exc_info(event_dict.pop("exc_info", None))
    if info is not None:
        event_dict.setdefault("error", f"{info[0].__name__}: {info[1]}")
    return event_dict


def _headline_first(_logger: WrappedLogger, _method: str, event_dict: EventDict) -> EventDict:
    # JSON keeps insertion order: put what a reader scans for first, context after.
    headline = {key: event_dict.pop(key) for key in ("timestamp", "level", "event") if key in event_dict}
    return headline | event_dict


def configure_logging(format: str = "auto", level: str = "info", stream: TextIO | None = None) -> None:
    """Set up structlog for the whole process. ``format`` "auto" is console on a terminal, JSON otherwise."""
    if format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {format!r}")
    if level not in LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LEVELS)}, got {level!r}")
    stream = sys.stderr if stream is None else stream
    console = format == "console" or (format == "auto" and stream.isatty())
    processors: list[Callable[..., Any]] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        mask_secrets,
    ]
    if console and level == "debug":
        processors.append(structlog.dev.ConsoleRenderer(colors=stream.isatty(), sort_keys=False))
    elif console:
        processors += [summarise_exception, structlog.dev.ConsoleRenderer(colors=stream.isatty(), sort_keys=False)]
    else:
        processors += [structlog.processors.format_exc_info, _headline_first, structlog.processors.JSONRenderer()]
    structlog.configure(
        processors=processors,
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.WriteLoggerFactory(file=stream),
        # Not cached: configure_logging may run again (tests, a reload) and must reach every logger.
        cache_logger_on_first_use=False,
    )


def session_logger(device_id: str, session_id: str) -> Any:
    """A logger bound to one CWMP session; every line it writes carries both identifiers."""
    return structlog.get_logger().bind(device_id=device_id, session_id=session_id)


_TWISTED_LEVELS = {"debug": "debug", "info": "info", "warn": "warning", "error": "error", "critical": "critical"}


def twisted_observer() -> Callable[[Mapping[str, Any]], None]:
    """A twisted.logger observer writing each event through structlog, at the same level (Failures as exc_info)."""
    from twisted.logger import formatEvent

    log = structlog.get_logger()

    def observe(event: Mapping[str, Any]) -> None:
        level = event.get("log_level")
        method = getattr(log, _TWISTED_LEVELS.get(getattr(level, "name", ""), "info"))
        fields: dict[str, Any] = {"logger": event.get("log_namespace", "twisted")}
        failure = event.get("log_failure")
        if failure is not None:
            fields["exc_info"] = (failure.type, failure.value, failure.getTracebackObject())
        # Twisted logs some Failures with an empty message after a headline event ("Unhandled error in Deferred:").
        method(formatEvent(dict(event)) or ("exception" if failure is not None else "(no message)"), **fields)

    return observe


def route_twisted_logs() -> None:
    """Send Twisted's own log events (and Python warnings) to the structlog output. Once per process."""
    from twisted.logger import globalLogBeginner

    globalLogBeginner.beginLoggingTo([twisted_observer()], redirectStandardIO=False)
