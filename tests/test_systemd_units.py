"""The systemd units: valid for systemd-analyze, sandboxed to an exposure of at most 2.0, and keeping the names the
application relies on."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

UNITS = Path(__file__).resolve().parent.parent / "systemd"
SERVICE = UNITS / "wp820-acs.service"
SOCKET = UNITS / "wp820-acs.socket"
INSTALLED_EXECUTABLE = "/opt/wp820-acs/bin/acs"
MAX_EXPOSURE = 2.0


@pytest.fixture(scope="module")
def systemd_analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail("systemd-analyze is not installed (Debian package 'systemd'): the unit checks cannot run")
    return found


def run_analyze(systemd_analyze: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SYSTEMD_COLORS": "0", "SYSTEMD_PAGER": ""}
    return subprocess.run(
        [systemd_analyze, "--no-pager", *args], capture_output=True, text=True, env=env, timeout=60, check=False
    )


def verifiable_copies(directory: Path) -> tuple[Path, Path]:
    """The two units in ``directory``, the service's ExecStart pointing at a stub executable.

    `systemd-analyze verify` fails when an Exec*= binary is missing, and the app is not installed in /opt on a build
    machine. Of the alternatives on systemd 252, `--root=DIR` reads units and binaries from DIR only, so it also wants
    sysinit.target and /bin/kill copied there; `--man=no` and `--generators=no` concern Documentation= and generators,
    not executables. Rewriting the one path keeps every other directive exactly as shipped.
    """
    stub = directory / "acs"
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    service_text = SERVICE.read_text()
    assert service_text.count(INSTALLED_EXECUTABLE) == 1, f"expected ExecStart to run {INSTALLED_EXECUTABLE} once"
    service = directory / SERVICE.name
    service.write_text(service_text.replace(INSTALLED_EXECUTABLE, str(stub)))
    socket = directory / SOCKET.name
    shutil.copyfile(SOCKET, socket)
    return service, socket


def test_units_verify_without_any_message(systemd_analyze: str, tmp_path: Path) -> None:
    service, socket = verifiable_copies(tmp_path)

    result = run_analyze(systemd_analyze, "verify", str(service), str(socket))

    # verify exits 0 on unknown keys and unparsable values (it only warns), so the output must be empty too.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


def test_verify_reports_a_bad_directive(systemd_analyze: str, tmp_path: Path) -> None:
    """The check above can fail: a mistyped directive produces output on this systemd."""
    service, socket = verifiable_copies(tmp_path)
    service.write_text(service.read_text().replace("WatchdogSec=", "WatchdogSecs="))

    result = run_analyze(systemd_analyze, "verify", str(service), str(socket))

    assert "WatchdogSecs" in result.stdout + result.stderr


def test_service_exposure_is_at_most_two(systemd_analyze: str) -> None:
    # --threshold is the exposure times ten; the tool then exits non-zero above it.
    threshold = f"--threshold={int(MAX_EXPOSURE * 10)}"
    result = run_analyze(systemd_analyze, "security", "--offline=yes", threshold, str(SERVICE))

    match = re.search(r"Overall exposure level for wp820-acs\.service: (\d+\.\d+)", result.stdout)
    assert match is not None, f"no overall exposure in systemd-analyze output:\n{result.stdout}{result.stderr}"
    exposure = float(match.group(1))
    assert exposure <= MAX_EXPOSURE, f"exposure {exposure} > {MAX_EXPOSURE}:\n{result.stdout}"
    assert result.returncode == 0, result.stderr


def directives(unit: Path) -> dict[str, list[str]]:
    """Every Key=value of a unit file, in order of appearance, keys repeated as systemd allows."""
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, value = line.split("=", 1)
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_names_the_application_relies_on() -> None:
    service = directives(SERVICE)
    socket = directives(SOCKET)

    assert service["Type"] == ["notify"]
    assert service["StateDirectory"] == ["wp820-acs"]
    assert service["ConfigurationDirectory"] == ["wp820-acs"]
    assert sorted(service["LoadCredential"]) == [
        "secrets.key:/etc/wp820-acs/credentials/secrets.key",
        "tls.key:/etc/wp820-acs/credentials/tls.key",
    ]
    assert socket["FileDescriptorName"] == ["cwmp"]
    assert socket["ListenStream"] == ["[::]:7549"]


def test_writable_executable_memory_stays_allowed() -> None:
    """pyOpenSSL's cffi callbacks fail with MemoryError under MemoryDenyWriteExecute=yes, whatever it would score."""
    assert directives(SERVICE).get("MemoryDenyWriteExecute", ["no"])[-1] in ("no", "false", "0", "off")
