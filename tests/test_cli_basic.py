"""The `acs` command line: subcommands, error reporting (one line, no traceback, exit codes), a real run."""

from __future__ import annotations

import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

import acs.cli
from acs.cli import cli
from acs.config import SCHEMA

NO_TLS = ["--set", "cwmp.https=", "--set", "cwmp.http=127.0.0.1:7548"]


def _run(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, prog_name="acs")


def _one_line_error(result: Result, exit_code: int) -> str:
    assert result.exit_code == exit_code, result.output
    assert result.stdout == "" and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("Error: ")
    return result.stderr[len("Error: ") : -1]


def test_help_lists_every_registered_command() -> None:
    result = _run("--help")
    assert result.exit_code == 0
    for name in ("config", "secrets", "tls"):
        assert f"  {name} " in result.stdout


def test_unknown_command_is_a_usage_error() -> None:
    result = _run("frobnicate")
    assert result.exit_code == 2 and "No such command 'frobnicate'" in result.stderr


# -- config --------------------------------------------------------------------------------------------------------


def test_config_check_prints_ok(tmp_path: Path) -> None:
    config = tmp_path / "acs.toml"
    config.write_text('[cwmp]\nhttps = []\nhttp = ["[::1]:7548"]\n')
    result = _run("config", "check", "--config", str(config), "--set", "cwmp.max_sessions=20")
    assert (result.exit_code, result.stdout, result.stderr) == (0, "ok\n", "")


def test_config_check_names_the_key_and_exits_2() -> None:
    result = _run("config", "check", *NO_TLS, "--set", "cwmp.max_sessions=abc")
    assert _one_line_error(result, 2) == "cwmp.max_sessions: must be an integer >= 1, got 'abc' (from --set)"


def test_config_check_reads_the_environment() -> None:
    result = _run("config", "check", *NO_TLS, env={"ACS_CWMP_SESSION_TIMEOUT": "1"})
    assert _one_line_error(result, 2).startswith("cwmp.session_timeout: must be an integer from 5 to 3600")


def test_config_check_reports_a_missing_file() -> None:
    assert _one_line_error(_run("config", "check", "--config", "/nonexistent/acs.toml"), 2) == (
        "config file not found: /nonexistent/acs.toml"
    )


def test_config_warnings_go_to_stderr_and_do_not_fail() -> None:
    result = _run("config", "check", *NO_TLS, "--set", "api.listen=0.0.0.0:7550")
    assert result.exit_code == 0 and result.stdout == "ok\n"
    assert result.stderr.startswith("warning: api.listen: 0.0.0.0:7550 is not loopback")


def test_config_show_prints_loadable_toml_of_the_effective_config() -> None:
    result = _run("config", "show", *NO_TLS, "--set", "cwmp.max_sessions=42")
    assert result.exit_code == 0
    shown = tomllib.loads(result.stdout)
    assert shown["cwmp"]["max_sessions"] == 42 and shown["cwmp"]["http"] == ["127.0.0.1:7548"]
    assert sum(len(table) for table in shown.values()) == len(SCHEMA)


def test_config_example_prints_the_packaged_example() -> None:
    result = _run("config", "example")
    assert result.exit_code == 0
    assert result.stdout == (Path(acs.cli.__file__).parent.parent / "data" / "acs.example.toml").read_text()


# -- tls and secrets -----------------------------------------------------------------------------------------------


def test_tls_ca_writes_four_files_and_refuses_to_overwrite(tmp_path: Path) -> None:
    result = _run("tls", "ca", "--host", "acs.example.net", "--host", "127.0.0.1", "--out", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ca.crt", "ca.key", "tls.crt", "tls.key"]
    assert stat.S_IMODE((tmp_path / "ca.key").stat().st_mode) == 0o600
    again = _run("tls", "ca", "--host", "acs.example.net", "--out", str(tmp_path))
    assert _one_line_error(again, 1).endswith("already exists; --force replaces it")


def test_tls_selfsigned_and_bad_host(tmp_path: Path) -> None:
    result = _run("tls", "selfsigned", "--host", "acs.example.net", "--out", str(tmp_path))
    assert result.exit_code == 0 and str(tmp_path / "tls.key") in result.stdout
    bad = _run("tls", "selfsigned", "--host", "not a host", "--out", str(tmp_path / "other"))
    assert _one_line_error(bad, 1) == "not a host name or IP address: 'not a host'"


def test_tls_requires_a_host(tmp_path: Path) -> None:
    result = _run("tls", "selfsigned", "--out", str(tmp_path))
    assert result.exit_code == 2 and "Missing option '--host'" in result.stderr


def test_secrets_keygen_writes_a_private_key_once(tmp_path: Path) -> None:
    key = tmp_path / "secrets.key"
    result = _run("secrets", "keygen", "--out", str(key))
    assert result.exit_code == 0 and stat.S_IMODE(key.stat().st_mode) == 0o600
    before = key.read_bytes()
    assert "already exists" in _one_line_error(_run("secrets", "keygen", "--out", str(key)), 1)
    assert key.read_bytes() == before
    assert _run("secrets", "keygen", "--out", str(key), "--force").exit_code == 0 and key.read_bytes() != before


def test_secrets_keygen_into_a_missing_directory_is_one_line(tmp_path: Path) -> None:
    message = _one_line_error(_run("secrets", "keygen", "--out", str(tmp_path / "no" / "secrets.key")), 1)
    assert message == f"No such file or directory: {tmp_path / 'no' / 'secrets.key'}"


# -- internal errors -----------------------------------------------------------------------------------------------


@pytest.fixture
def broken_command(monkeypatch: pytest.MonkeyPatch) -> None:
    @click.command()
    def broken() -> None:
        raise ZeroDivisionError("secret detail")

    module = type(sys)("tests_broken_cmd")
    module.command = broken  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "tests_broken_cmd", module)
    monkeypatch.setitem(acs.cli._COMMANDS, "broken", "tests_broken_cmd")


@pytest.mark.usefixtures("broken_command")
def test_internal_errors_are_one_line_with_a_hint() -> None:
    message = _one_line_error(_run("broken"), 1)
    assert message == "internal error: ZeroDivisionError (run with --debug for the traceback)"


@pytest.mark.usefixtures("broken_command")
def test_debug_shows_the_traceback() -> None:
    result = _run("--debug", "broken")
    assert result.exit_code == 1 and isinstance(result.exception, ZeroDivisionError)


# -- the installed script ------------------------------------------------------------------------------------------


def test_installed_acs_script_runs() -> None:
    script = Path(sys.executable).with_name("acs")
    result = subprocess.run([str(script), "--help"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "Usage: acs [OPTIONS] COMMAND" in result.stdout
    failed = subprocess.run([str(script), "config", "check", "--set", "x"], capture_output=True, text=True, timeout=60)
    assert failed.returncode == 2
    assert failed.stderr == "Error: --set: expected section.key=value, got 'x'\n"


def test_help_imports_no_twisted_structlog_or_cryptography() -> None:
    probe = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from acs.cli import cli\n"
        "assert CliRunner().invoke(cli, ['--help']).exit_code == 0\n"
        "heavy = ('twisted', 'structlog', 'cryptography', 'OpenSSL')\n"
        "print(sorted({m.split('.')[0] for m in sys.modules if m.split('.')[0] in heavy}))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout == "[]\n"
