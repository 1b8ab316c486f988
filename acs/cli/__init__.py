"""The ``acs`` command line.

Adding a subcommand: write ``acs/cli/<name>_cmd.py`` defining ``command`` (a ``click.Command`` or ``click.Group``)
and add one line to ``_COMMANDS``. Modules are imported only when their command runs, or all of them for
``acs --help``; so a command module imports only click at module level, and Twisted, the store or cryptography
inside its functions. That keeps ``acs --help`` fast (a test holds it to "no Twisted").

Errors: a command just raises. Errors a user can fix (``_USER_ERRORS``: a bad configuration, a missing file, an
unusable key) become one line on stderr and a non-zero exit code (2 for configuration errors, like usage errors);
anything else becomes "internal error: <type>" with a hint to rerun with ``--debug``, which shows the traceback.
A module with its own user-facing error class adds one line to ``_USER_ERRORS``.
"""

from __future__ import annotations

import importlib
import sys
from typing import Any, NoReturn

import click

# name -> module defining `command`. One line per subcommand.
_COMMANDS = {
    "compliance": "acs.cli.compliance_cmd",
    "config": "acs.cli.config_cmd",
    "demo": "acs.cli.demo_cmd",
    "enrol": "acs.cli.enrol_cmd",
    "exempt": "acs.cli.exempt_cmd",
    "kick": "acs.cli.kick_cmd",
    "serve": "acs.cli.serve_cmd",
    "secrets": "acs.cli.vault_cmd",
    "tls": "acs.cli.tls_cmd",
}

# (module, class, exit code). Named rather than imported, so that listing them loads nothing: an exception can only
# be an instance of a class whose module is already loaded, and only loaded modules are consulted.
_USER_ERRORS = (
    ("acs.config", "ConfigError", 2),
    ("acs.vault", "VaultError", 1),
    ("acs.tls", "TlsError", 1),
    ("acs.credentials", "EnrolmentError", 1),
    ("acs.policy.rules", "PolicyError", 2),
    ("acs.store.base", "StoreError", 1),
    ("builtins", "OSError", 1),
)


class CliError(click.ClickException):
    """A one-line error with a chosen exit code."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class _AcsGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        module = _COMMANDS.get(name)
        return None if module is None else importlib.import_module(module).command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            if ctx.params.get("debug"):
                raise
            _fail(exc)


def _fail(exc: Exception) -> NoReturn:
    for module_name, class_name, exit_code in _USER_ERRORS:
        module = sys.modules.get(module_name)
        if module is not None and isinstance(exc, getattr(module, class_name)):
            raise CliError(_describe(exc), exit_code) from None
    raise CliError(f"internal error: {type(exc).__name__} (run with --debug for the traceback)") from None


def _describe(exc: Exception) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return f"{exc.strerror}: {exc.filename}" if exc.filename else exc.strerror
    return str(exc) or type(exc).__name__


@click.group(cls=_AcsGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, envvar="ACS_DEBUG", help="Show the traceback of internal errors.")
def cli(debug: bool) -> None:
    """TR-069 (CWMP) auto-configuration server that hardens Grandstream WP820 phones."""


def main() -> None:
    """Console-script entry point (``acs``)."""
    cli(prog_name="acs")
