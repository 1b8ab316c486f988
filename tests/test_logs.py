"""acs.logs: output shapes, secret masking, level filtering, exceptions, Twisted routing."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
import structlog
from twisted.logger import Logger

from acs.logs import configure_logging, is_secret_name, session_logger, twisted_observer


@pytest.fixture(autouse=True)
def _restore_structlog() -> Iterator[None]:
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


def _json_lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


# -- shapes --------------------------------------------------------------------------------------------------------


def test_json_lines_carry_timestamp_level_event_and_session_context() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    session_logger("000B82-WP820-0001", "s-17").info("inform received", events=["1 BOOT"])
    [line] = _json_lines(stream)
    assert list(line)[:3] == ["timestamp", "level", "event"]
    assert line["level"] == "info" and line["event"] == "inform received" and line["events"] == ["1 BOOT"]
    assert (line["device_id"], line["session_id"]) == ("000B82-WP820-0001", "s-17")
    stamp = datetime.fromisoformat(line["timestamp"])
    assert line["timestamp"].endswith("Z") and stamp.utcoffset() == timezone.utc.utcoffset(None)


def test_console_lines_are_readable_key_value() -> None:
    stream = io.StringIO()
    configure_logging("console", "info", stream)
    session_logger("000B82-WP820-0001", "s-17").warning("slow session", seconds=12)
    line = stream.getvalue().rstrip("\n")
    assert "\n" not in line
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\dT[\d:.]+Z \[warning\s*\] slow session\s+"
        r"device_id=000B82-WP820-0001 session_id=s-17 seconds=12",
        line,
    )


def test_auto_is_console_on_a_terminal_and_json_elsewhere() -> None:
    terminal, pipe = _Terminal(), io.StringIO()
    configure_logging("auto", "info", terminal)
    structlog.get_logger().info("hello")
    configure_logging("auto", "info", pipe)
    structlog.get_logger().info("hello")
    shown = re.sub(r"\x1b\[[0-9;]*m", "", terminal.getvalue())  # a terminal gets colours
    assert "[info" in shown and "hello" in shown and not shown.startswith("{")
    assert _json_lines(pipe)[0]["event"] == "hello"


def test_context_variables_are_merged() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    structlog.contextvars.bind_contextvars(device_id="dev-1")
    structlog.get_logger().info("x")
    assert _json_lines(stream)[0]["device_id"] == "dev-1"


@pytest.mark.parametrize(("format", "level"), [("xml", "info"), ("json", "verbose")])
def test_bad_format_or_level_is_refused(format: str, level: str) -> None:
    with pytest.raises(ValueError, match=format if format == "xml" else level):
        configure_logging(format, level, io.StringIO())


# -- levels --------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("level", "expected"),
    [
        ("debug", ["debug", "info", "warning", "error"]),
        ("info", ["info", "warning", "error"]),
        ("warning", ["warning", "error"]),
        ("critical", []),
    ],
)
def test_level_filters_lower_levels(level: str, expected: list[str]) -> None:
    stream = io.StringIO()
    configure_logging("json", level, stream)
    log = structlog.get_logger()
    log.debug("d")
    log.info("i")
    log.warning("w")
    log.error("e")
    assert [line["level"] for line in _json_lines(stream)] == expected


# -- secret masking ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "password",
        "new_password",
        "ConnectionRequestPassword",
        "X_GRANDSTREAM_AdminPassword",
        "Device.ManagementServer.Password",
        "KeyPassphrase",
        "PreSharedKey",
        "WEPKey",
        "private_key",
        "api-key",
        "secret",
        "client_secret",
        "token",
        "bearer_token",
        "Authorization",
        "proxy_authorization",
        "psk",
        "ha1",
        "passwd",
    ],
)
def test_secret_names(name: str) -> None:
    assert is_secret_name(name)


@pytest.mark.parametrize(
    "name",
    [
        "key",
        "ParameterKey",
        "CommandKey",
        "parameter_key",
        "device_id",
        "session_id",
        "token_file",
        "secrets.key_file",
        "key_file",
        "password_length",
        "secret_name",
        "public_key",
        "username",
        "nonce",
        "event",
        "keys",
        "monkey",
    ],
)
def test_not_secret_names(name: str) -> None:
    assert not is_secret_name(name)


def test_masking_reaches_nested_dicts_and_lists_and_leaves_the_rest() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    structlog.get_logger().info(
        "set parameters",
        password="hunter2",
        parameters={"Device.ManagementServer.Password": "pw1", "Device.ManagementServer.PeriodicInformInterval": 300},
        batches=[{"X_GRANDSTREAM_AdminPassword": "pw2", "name": "admin"}, ("plain", {"token": "tk"})],
        parameter_key="pk-9",
        device_id="dev-1",
    )
    [line] = _json_lines(stream)
    assert line["password"] == "***"
    assert line["parameters"] == {
        "Device.ManagementServer.Password": "***",
        "Device.ManagementServer.PeriodicInformInterval": 300,
    }
    assert line["batches"] == [{"X_GRANDSTREAM_AdminPassword": "***", "name": "admin"}, ["plain", {"token": "***"}]]
    assert (line["parameter_key"], line["device_id"]) == ("pk-9", "dev-1")
    for secret in ("hunter2", "pw1", "pw2", "tk"):
        assert secret not in stream.getvalue()


def test_bound_secrets_are_masked_too() -> None:
    stream = io.StringIO()
    configure_logging("console", "info", stream)
    structlog.get_logger().bind(cr_password="s3cret").info("connection request")
    assert "cr_password=***" in stream.getvalue() and "s3cret" not in stream.getvalue()


# -- exceptions ----------------------------------------------------------------------------------------------------


def _log_an_exception(stream: io.StringIO, format: str, level: str) -> str:
    configure_logging(format, level, stream)
    try:
        raise ValueError("bad inform")
    except ValueError:
        structlog.get_logger().exception("session failed")
    return stream.getvalue()


def test_json_puts_the_traceback_in_one_field() -> None:
    output = _log_an_exception(io.StringIO(), "json", "info")
    [line] = [json.loads(text) for text in output.splitlines()]
    assert line["level"] == "error"
    assert line["exception"].startswith("Traceback") and line["exception"].endswith("ValueError: bad inform")


def test_console_shows_no_traceback_below_debug() -> None:
    output = _log_an_exception(io.StringIO(), "console", "info")
    assert "Traceback" not in output and output.count("\n") == 1
    assert "error='ValueError: bad inform'" in output


def test_console_shows_the_traceback_at_debug() -> None:
    output = _log_an_exception(io.StringIO(), "console", "debug")
    assert "Traceback (most recent call last)" in output and "ValueError: bad inform" in output


# -- Twisted -------------------------------------------------------------------------------------------------------


def test_twisted_events_keep_their_level_namespace_and_failure() -> None:
    stream = io.StringIO()
    configure_logging("json", "info", stream)
    twisted_log = Logger(namespace="twisted.web.server", observer=twisted_observer())
    twisted_log.debug("too low {x}", x=1)
    twisted_log.warn("port {port} busy", port=7549)
    try:
        raise KeyError("gone")
    except KeyError:
        twisted_log.failure("request failed")
    warning, failure = _json_lines(stream)
    assert warning == {**warning, "level": "warning", "event": "port 7549 busy", "logger": "twisted.web.server"}
    assert failure["level"] == "critical" and failure["event"] == "request failed"
    assert failure["exception"].startswith("Traceback") and failure["exception"].endswith("KeyError: 'gone'")


def _run_routed(format: str, body: str) -> subprocess.CompletedProcess[str]:
    script = textwrap.dedent(
        f"""
        import gc, sys
        from acs.logs import configure_logging, route_twisted_logs
        configure_logging({format!r}, "info", sys.stderr)
        route_twisted_logs()
        """
    ) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)


def test_route_twisted_logs_sends_twisted_messages_and_unhandled_errors_to_json() -> None:
    result = _run_routed(
        "json",
        """
        from twisted.internet import defer
        from twisted.logger import Logger
        Logger(namespace="acs.test").info("listening on {port}", port=7549)
        d = defer.fail(ValueError("lost"))
        del d
        gc.collect()
        """,
    )
    lines = [json.loads(line) for line in result.stderr.splitlines()]
    assert {"event": "listening on 7549", "logger": "acs.test", "level": "info"}.items() <= lines[0].items()
    headline = next(i for i, line in enumerate(lines) if line["event"] == "Unhandled error in Deferred:")
    failure = lines[headline + 1]
    assert (failure["level"], failure["event"]) == ("critical", "exception")
    assert failure["exception"].endswith("ValueError: lost")
    assert result.stdout == ""


def test_routed_unhandled_errors_show_no_traceback_on_a_console() -> None:
    result = _run_routed(
        "console",
        """
        from twisted.internet import defer
        d = defer.fail(ValueError("lost"))
        del d
        gc.collect()
        """,
    )
    assert "Unhandled error in Deferred" in result.stderr and "error='ValueError: lost'" in result.stderr
    assert "Traceback" not in result.stderr
