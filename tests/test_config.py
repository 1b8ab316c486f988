"""acs.config: schema, sources and their priority, validation messages, paths, the example file, to_toml."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from importlib import resources
from pathlib import Path

import pytest

from acs.config import SCHEMA, Config, ConfigError, Integer, load_config, parse_listener

EXAMPLE = resources.files("acs") / "data" / "acs.example.toml"
# Just enough to satisfy the rules that involve several keys without files on disk.
NO_TLS = ["cwmp.https=", "cwmp.http=127.0.0.1:7548"]


def _load(*overrides: str, env: dict[str, str] | None = None, path: str | None = None) -> Config:
    return load_config(path, env=env or {}, overrides=[*NO_TLS, *overrides])


def _write(tmp_path: Path, text: str, name: str = "acs.toml") -> str:
    target = tmp_path / name
    target.write_text(text)
    return str(target)


@pytest.fixture
def tls_files(tmp_path: Path) -> list[str]:
    """tls.cert and tls.key overrides naming existing files (their contents are not the config's business)."""
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_text("cert")
    key.write_text("key")
    return [f"tls.cert={cert}", f"tls.key={key}"]


# -- defaults and typed access -------------------------------------------------------------------------------------


def test_defaults_are_typed_and_match_the_brief(tls_files: list[str]) -> None:
    config = load_config(None, env={}, overrides=tls_files)
    assert config.cwmp.https == ("0.0.0.0:7549",) and config.cwmp.http == ()
    assert config.cwmp.max_sessions == 500 and config.cwmp.backlog == 1024
    assert config.auth.algorithms == ("SHA-256", "MD5") and config.auth.enabled is True
    assert config.connreq.timeout == 5.0 and isinstance(config.connreq.timeout, float)
    assert config.connreq.port == 58547
    assert config.api.listen == "127.0.0.1:7550"
    assert config.warnings == ()


def test_config_is_frozen() -> None:
    config = _load()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.cwmp.max_sessions = 1  # type: ignore[misc]


def test_every_key_has_a_doc_and_a_default_its_kind_accepts() -> None:
    for key in SCHEMA:
        assert key.doc and "\n" not in key.doc, key.name
        assert key.kind.from_toml(key.default) == key.default, key.name


def test_value_reads_a_dotted_key() -> None:
    assert _load("cwmp.max_sessions=7").value("cwmp.max_sessions") == 7


# -- sources and priority ------------------------------------------------------------------------------------------


def test_file_then_environment_then_set_each_win_over_the_previous(tmp_path: Path) -> None:
    path = _write(tmp_path, "[cwmp]\nmax_sessions = 10\nsession_timeout = 60\nbacklog = 2048\n")
    env = {"ACS_CWMP_SESSION_TIMEOUT": "90", "ACS_CWMP_BACKLOG": "4096"}
    config = _load("cwmp.backlog=8192", env=env, path=path)
    assert (config.cwmp.max_sessions, config.cwmp.session_timeout, config.cwmp.backlog) == (10, 90, 8192)


def test_environment_lists_are_comma_separated_and_text_values_are_parsed_by_kind() -> None:
    env = {
        "ACS_CWMP_HTTP": "127.0.0.1:7548, [::1]:7548",
        "ACS_AUTH_ALGORITHMS": "MD5",
        "ACS_AUTH_BASIC_OVER_TLS": "no",
        "ACS_CONNREQ_RATE": "2.5",
    }
    config = load_config(None, env={**env, "ACS_CWMP_HTTPS": ""})
    assert config.cwmp.http == ("127.0.0.1:7548", "[::1]:7548") and config.cwmp.https == ()
    assert config.auth.algorithms == ("MD5",)
    assert config.auth.basic_over_tls is False
    assert config.connreq.rate == 2.5


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return ",".join(value) if isinstance(value, tuple) else str(value)


def test_every_key_can_be_set_from_its_environment_variable(tls_files: list[str]) -> None:
    baseline = load_config(None, env={}, overrides=tls_files)
    env = {key.env_var: _as_text(baseline.value(key.name)) for key in SCHEMA}
    assert "ACS_CWMP_MAX_SESSIONS" in env and len(env) == len(SCHEMA)
    assert load_config(None, env=env) == baseline  # tls.cert and tls.key come from the environment too


def test_acs_variables_outside_the_sections_are_left_to_other_tools() -> None:
    assert _load(env={"ACS_DEBUG": "1", "ACS_CONFIG": "/x", "ACSX_CWMP_BACKLOG": "y"}) == _load()


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ({"env": {"ACS_CWMP_MAX_SESIONS": "5"}}, "unknown key cwmp.max_sesions; did you mean cwmp.max_sessions?"),
        ({"set": "cwmp.max_sesions=5"}, "unknown key cwmp.max_sesions; did you mean cwmp.max_sessions?"),
        ({"file": "[cwmp]\nmax_sesions = 5\n"}, "unknown key cwmp.max_sesions; did you mean cwmp.max_sessions?"),
        ({"file": "[cwmpp]\nmax_sessions = 5\n"}, "unknown section [cwmpp]; did you mean cwmp?"),
        ({"file": "max_sessions = 5\n"}, "unknown key max_sessions: settings belong in a [section] table"),
        ({"file": "cwmp = 5\n"}, "cwmp: must be a table ([cwmp])"),
        ({"set": "cwmp.max_sessions"}, "--set: expected section.key=value, got 'cwmp.max_sessions'"),
    ],
)
def test_unknown_keys_and_malformed_sources_are_errors(tmp_path: Path, source: dict, message: str) -> None:
    path = _write(tmp_path, source["file"]) if "file" in source else None
    overrides = [source["set"]] if "set" in source else []
    with pytest.raises(ConfigError) as raised:
        _load(*overrides, env=source.get("env"), path=path)
    assert str(raised.value).startswith(message)


def test_errors_say_where_the_value_came_from(tmp_path: Path) -> None:
    path = _write(tmp_path, "[cwmp]\nmax_sessions = 0\n")
    with pytest.raises(ConfigError, match=re.escape(f"(in {path})")):
        _load(path=path)
    with pytest.raises(ConfigError, match=r"\(from environment variable ACS_CWMP_MAX_SESSIONS\)$"):
        _load(env={"ACS_CWMP_MAX_SESSIONS": "abc"})
    with pytest.raises(ConfigError, match=r"\(from --set\)$"):
        _load("cwmp.max_sessions=abc")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "config file not found"),
        ("[cwmp\n", "invalid TOML"),
    ],
)
def test_unreadable_files_are_config_errors(tmp_path: Path, text: str, message: str) -> None:
    path = _write(tmp_path, text) if text else str(tmp_path / "missing.toml")
    with pytest.raises(ConfigError, match=message):
        _load(path=path)


# -- per-key validation --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("cwmp.max_sessions=abc", "cwmp.max_sessions: must be an integer >= 1, got 'abc'"),
        ("cwmp.max_sessions=0", "cwmp.max_sessions: must be an integer >= 1, got 0"),
        ("cwmp.session_timeout=4", "cwmp.session_timeout: must be an integer from 5 to 3600, got 4"),
        ("cwmp.session_timeout=3601", "cwmp.session_timeout: must be an integer from 5 to 3600, got 3601"),
        ("connreq.port=7547", "connreq.port: must be an integer from 1025 to 65535 other than 7547, got 7547"),
        ("connreq.port=1024", "connreq.port: must be an integer from 1025 to 65535 other than 7547, got 1024"),
        ("connreq.timeout=0", "connreq.timeout: must be a number > 0 and <= 300, got 0.0"),
        ("connreq.rate=fast", "connreq.rate: must be a number > 0, got 'fast'"),
        ("connreq.rate=nan", "connreq.rate: must be a number > 0, got nan"),
        ("auth.enabled=maybe", "auth.enabled: must be true or false, got 'maybe'"),
        ("tls.min_version=1.1", 'tls.min_version: must be one of "1.2", "1.3", got \'1.1\''),
        ("log.level=verbose", "log.level: must be one of"),
        ("auth.algorithms=", "auth.algorithms: must be a list of one or more strings"),
        ("auth.algorithms=SHA-512", 'auth.algorithms: each item must be one of "SHA-256", "MD5", got \'SHA-512\''),
        ("auth.algorithms=MD5,MD5", "auth.algorithms: must not repeat an item"),
        ("cwmp.http=localhost:7548", "cwmp.http: each item must be \"host:port\""),
        ("cwmp.http=::1:7548", "cwmp.http: each item must be \"host:port\""),
        ("cwmp.http=127.0.0.1:0", "cwmp.http: each item must be \"host:port\""),
        ("cwmp.http=127.0.0.1:65536", "cwmp.http: each item must be \"host:port\""),
        ("cwmp.http=[127.0.0.1]:7548", "cwmp.http: each item must be \"host:port\""),
        ("api.listen=", "api.listen: must be \"host:port\""),
        ("cwmp.public_url=ftp://acs.example.net/", "cwmp.public_url: must be an http:// or https:// URL"),
        ("cwmp.public_url=https://", "cwmp.public_url: must be an http:// or https:// URL"),
        ("cwmp.public_url=https://acs:99999/", "cwmp.public_url: must be an http:// or https:// URL"),
        ("cwmp.path=cwmp", "cwmp.path: must be a URL path starting with \"/\""),
        ("cwmp.path=/a b", "cwmp.path: must be a URL path"),
        ("cwmp.systemd_socket=a:b", "cwmp.systemd_socket: must be a systemd FileDescriptorName"),
        ('auth.realm=a"b', "auth.realm: must be printable ASCII without quotes"),
        ("auth.bootstrap_username=a:b", "auth.bootstrap_username: must be printable ASCII"),
        ("stun.public_host=-bad host", "stun.public_host: must be a host name or IP address"),
        ("tls.cert=credential:../x", "tls.cert: must be a file path or credential:NAME"),
        ("store.path=credential:db", "store.path: must be a file path, got 'credential:db'"),
    ],
)
def test_each_bad_value_is_reported_against_its_key(override: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(override)
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ("[cwmp]\nmax_sessions = true\n", "cwmp.max_sessions: must be an integer >= 1, got True"),
        ("[cwmp]\nmax_sessions = 1.5\n", "cwmp.max_sessions: must be an integer >= 1, got 1.5"),
        ("[cwmp]\nmax_sessions = \"50\"\n", "cwmp.max_sessions: must be an integer >= 1, got '50'"),
        ("[tls]\nmin_version = 1.2\n", 'tls.min_version: must be one of "1.2", "1.3", got 1.2'),
        ("[cwmp]\nhttps = \"0.0.0.0:7549\"\n", "cwmp.https: must be a list of strings"),
        ("[cwmp]\nhttps = [7549]\n", "cwmp.https: must be a list of strings"),
        ("[auth]\nenabled = \"yes\"\n", "auth.enabled: must be true or false, got 'yes'"),
    ],
)
def test_toml_values_must_have_the_right_type(tmp_path: Path, toml: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(path=_write(tmp_path, toml))
    assert str(raised.value).startswith(message)


def test_integer_floats_are_accepted_for_number_keys(tmp_path: Path) -> None:
    config = _load(path=_write(tmp_path, "[connreq]\ntimeout = 2\n"))
    assert config.connreq.timeout == 2.0 and isinstance(config.connreq.timeout, float)


def test_ipv6_listeners_are_bracketed() -> None:
    assert parse_listener("[::]:7548") == ("::", 7548)
    assert parse_listener("0.0.0.0:7549") == ("0.0.0.0", 7549)
    with pytest.raises(ValueError):
        parse_listener("[::]")


def test_integer_kind_describes_itself() -> None:
    assert Integer(1).expect == "an integer >= 1"
    assert Integer(1025, 65535, forbidden=(7547,)).expect == "an integer from 1025 to 65535 other than 7547"


# -- rules involving several keys ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ([], "tls.cert: required because cwmp.https is set"),
        (["cwmp.https=", "cwmp.systemd_socket=cwmp"], "tls.cert: required because cwmp.systemd_socket is set"),
        (["cwmp.https="], "cwmp.https: no CWMP listener"),
    ],
)
def test_tls_files_and_a_listener_are_required(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        load_config(None, env={}, overrides=overrides)
    assert str(raised.value).startswith(message)


def test_tls_key_is_required_with_the_cert(tls_files: list[str]) -> None:
    with pytest.raises(ConfigError, match="^tls.key: required because cwmp.https is set$"):
        load_config(None, env={}, overrides=[tls_files[0]])
    with pytest.raises(ConfigError, match="^tls.key: required with tls.cert$"):
        _load(tls_files[0])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["cwmp.retry_after_min=200"], "cwmp.retry_after_min: must be <= cwmp.retry_after_max (200 > 120)"),
        (["cwmp.max_decompressed_bytes=2048"], "cwmp.max_decompressed_bytes: must be >= cwmp.max_body_bytes"),
        (["auth.bootstrap_enabled=true"], "auth.bootstrap_secret_file: required because auth.bootstrap_enabled"),
    ],
)
def test_rules_between_keys(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        _load(*overrides)
    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("override", "warning"),
    [
        ("api.listen=0.0.0.0:7550", "api.listen: 0.0.0.0:7550 is not loopback"),
        ("cwmp.backlog=128", "cwmp.backlog: 128 is below 1024"),
        ("auth.enabled=false", "auth.enabled: false; any device can connect"),
        ("connreq.allow_basic=true", "connreq.allow_basic: true;"),
    ],
)
def test_risky_but_valid_settings_are_warnings(override: str, warning: str) -> None:
    warnings = _load(override).warnings
    assert len(warnings) == 1 and warnings[0].startswith(warning)


def test_ipv6_loopback_api_is_not_a_warning() -> None:
    assert _load("api.listen=[::1]:7550").warnings == ()


# -- paths, credentials and derived defaults -----------------------------------------------------------------------


def test_credential_paths_resolve_in_the_credentials_directory(tmp_path: Path) -> None:
    (tmp_path / "tls.key").write_text("key")
    (tmp_path / "tls.crt").write_text("cert")
    env = {"CREDENTIALS_DIRECTORY": str(tmp_path)}
    config = load_config(None, env=env, overrides=["tls.cert=credential:tls.crt", "tls.key=credential:tls.key"])
    assert (config.tls.cert, config.tls.key) == (str(tmp_path / "tls.crt"), str(tmp_path / "tls.key"))


def test_credential_without_directory_or_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"^secrets.key_file: credential:secrets.key needs \$CREDENTIALS_DIRECTORY"):
        _load("secrets.key_file=credential:secrets.key")
    with pytest.raises(ConfigError, match=r"^secrets.key_file: credential:secrets.key: no file secrets.key in"):
        _load("secrets.key_file=credential:secrets.key", env={"CREDENTIALS_DIRECTORY": str(tmp_path)})


def test_files_read_at_start_must_exist(tmp_path: Path) -> None:
    missing = tmp_path / "nope.key"
    with pytest.raises(ConfigError, match=f"^secrets.key_file: no such file: {re.escape(str(missing))}"):
        _load(f"secrets.key_file={missing}")
    with pytest.raises(ConfigError, match="^policy.files: no such file"):
        _load(f"policy.files={missing}")


def test_store_path_follows_systemd_state_directory() -> None:
    assert _load().store.path == "./var/acs.sqlite"
    assert _load(env={"STATE_DIRECTORY": "/var/lib/wp820-acs"}).store.path == "/var/lib/wp820-acs/acs.sqlite"
    assert _load(env={"STATE_DIRECTORY": "/s1:/s2"}).store.path == "/s1/acs.sqlite"
    assert _load("store.path=/data/x.sqlite", env={"STATE_DIRECTORY": "/s"}).store.path == "/data/x.sqlite"


def test_files_and_stun_defaults_derive_from_the_public_url() -> None:
    config = _load("cwmp.public_url=https://acs.example.net:7549/cwmp")
    assert config.files.base_url == "https://acs.example.net:7549"
    assert config.stun.public_host == "acs.example.net"
    explicit = _load("cwmp.public_url=https://acs.example.net/cwmp", "files.base_url=https://files.example.net")
    assert explicit.files.base_url == "https://files.example.net"
    assert _load().files.base_url == "" and _load().stun.public_host == ""


# -- the example file and to_toml ----------------------------------------------------------------------------------


def test_example_documents_every_key_with_a_comment() -> None:
    text = EXAMPLE.read_text()
    document = tomllib.loads(text)
    lines = text.splitlines()
    for key in SCHEMA:
        assert key.field in document.get(key.section, {}), f"{key.name} missing from the example"
        section_start = lines.index(f"[{key.section}]")
        line = next(i for i in range(section_start, len(lines)) if lines[i].startswith(f"{key.field} = "))
        # A key is documented by the comment just above it, or shares that of the key just above (a pair).
        above = lines[line - 1]
        assert above.startswith("# ") or re.match(r"^\w+ = ", above), f"{key.name} has no comment"


def test_example_loads_and_equals_the_defaults(tls_files: list[str]) -> None:
    assert load_config(str(EXAMPLE), env={}, overrides=tls_files) == load_config(None, env={}, overrides=tls_files)


def test_to_toml_round_trips_the_effective_config(tmp_path: Path, tls_files: list[str]) -> None:
    awkward = tmp_path / 'site "overlay"\\\tü.toml'  # a quote, a backslash, a tab and non-ASCII to escape
    awkward.write_text("")
    config = load_config(
        None,
        env={"STATE_DIRECTORY": str(tmp_path)},
        overrides=[
            *tls_files,
            "cwmp.http=[::]:7548",
            "cwmp.public_url=https://acs.example.net:7549/cwmp",
            f"policy.site={awkward}",
            "connreq.timeout=0.25",
            "auth.algorithms=MD5",
        ],
    )
    reloaded = load_config(_write(tmp_path, config.to_toml(), "shown.toml"), env={})
    assert reloaded == config
    assert config.policy.site == str(awkward)
    assert config.store.path == str(tmp_path / "acs.sqlite")


def test_to_toml_shows_paths_never_file_contents(tmp_path: Path) -> None:
    key_file = tmp_path / "secrets.key"
    key_file.write_text("c2VjcmV0LWtleS1tYXRlcmlhbA==")
    shown = _load(f"secrets.key_file={key_file}").to_toml()
    assert str(key_file) in shown and "c2VjcmV0" not in shown
