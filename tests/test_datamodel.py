"""The WP820 data model: loads, agrees with Grandstream's own sources, validates and converts values correctly."""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import datetime, timezone

import pytest

from tests.reference import REFERENCE as SHARED_REFERENCE

from cwmp_models.datamodel import (
    ActiveNotify,
    InvalidValue,
    ModelDefinitionError,
    ParameterSpec,
    Source,
    load_model,
    parse_model,
)
from cwmp_models.types import UNKNOWN_TIME, XsdType, format_value

REFERENCE = SHARED_REFERENCE / "grandstream"
DAEMON_TSV = REFERENCE / "gs-cpe-datamodel-ht802-voice1.tsv"
TEMPLATE_TSV = REFERENCE / "wp820-template-pvalues.tsv"

# TR-069 paths the model uses although Grandstream's daemon model does not list them. None so far: every path comes
# from the daemon. Adding one means adding it here, on purpose.
DELIBERATE_EXTENSIONS: frozenset[str] = frozenset()

# P-values in the model that the WP820 template does not carry, and why they are there anyway.
PVALUES_NOT_IN_TEMPLATE = {
    "P4508": "PeriodicInformTime, gs_cpe daemon",
    "P4509": "ParameterKey, gs_cpe daemon",
    "P4513": "UpgradesManaged, gs_cpe daemon",
    "P4517": "ProvisioningCode, gs_cpe daemon",
    "P4510": "STUNMaximumKeepAlivePeriod, gs_cpe daemon",
    "P4520": "STUNMinimumKeepAlivePeriod, gs_cpe daemon",
    "P8200": "UDPConnectionRequestAddressNotificationLimit, gs_cpe daemon",
    "P8201": "STUN username, NOTES",
    "P8202": "STUN password, NOTES",
    "P8205": "STUN enable, NOTES",
    "P8209": "STUN server, NOTES",
    "P196": "user password, daemon and NOTES",
    "P27006": "SSH port, daemon and NOTES",
    "P8037": "LDAP connection mode, NOTES (other Grandstream models)",
}

# Factory defaults where the security guide overrides the template's literal value.
GUIDE_OVERRIDES_TEMPLATE = {
    "P276": "the guide: SSH is enabled by default",
    "P413": "the guide: account 2 listens on 5062",
}


@pytest.fixture(scope="module")
def model():
    return load_model("wp820")


@dataclass(frozen=True)
class DaemonRow:
    pattern: re.Pattern[str]
    type: str
    writable: bool
    validator: str
    constraint: str
    pvalues: str
    reboot: bool


def _daemon_rows() -> list[DaemonRow]:
    rows = []
    with DAEMON_TSV.open(newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE):
            if row["type"] == "object":
                continue
            pattern = re.compile(re.escape(row["path"]).replace(re.escape("{i}"), "[0-9]+"))
            rows.append(
                DaemonRow(
                    pattern=pattern,
                    # The daemon spells the type both "unsignedInt" and "UnsignedInt".
                    type=row["type"][:1].lower() + row["type"][1:],
                    # "W" (once "w") is writable; "S" (ParameterKey) is set only through the SPV ParameterKey argument.
                    writable=row["writable"] in ("W", "w"),
                    validator=row["validator"],
                    constraint=row["constraint"],
                    pvalues=row["pvalues_or_static_value"],
                    reboot=row["need_reboot"] == "T",
                )
            )
    return rows


@pytest.fixture(scope="module")
def daemon_rows():
    return _daemon_rows()


def _rows_for(path: str, rows: list[DaemonRow]) -> list[DaemonRow]:
    return [row for row in rows if row.pattern.fullmatch(path)]


@pytest.fixture(scope="module")
def template():
    with TEMPLATE_TSV.open(newline="", encoding="utf-8") as handle:
        return {row["pvalue"]: row for row in csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)}


def _samples(spec: ParameterSpec) -> list[object]:
    """Values every spec must carry through both channels: its default, each enum member, the range ends."""
    values: list[object] = [spec.default]
    if spec.enum:
        values += spec.enum
    if spec.type is XsdType.BOOLEAN:
        values += [True, False]
    if spec.range:
        values += list(spec.range)
    if spec.type is XsdType.DATETIME:
        values.append(datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone.utc))
    return values


# --- Loading and shape ------------------------------------------------------------------------------------------------


def test_model_loads_once_with_its_identity(model):
    assert load_model("wp820") is model
    identity = (model.name, model.manufacturer, model.oui, model.product_class)
    assert identity == ("wp820", "Grandstream", "000B82", "WP820")
    assert set(model.oui_aliases) == {"C074AD", "EC74D7"}
    by_key = model.parameters
    assert by_key["device.manufacturer"].default == model.manufacturer
    assert by_key["device.manufacturer_oui"].default == model.oui
    assert by_key["device.product_class"].default == model.product_class
    assert by_key["device.software_version"].default == model.software_version


@pytest.mark.parametrize("name", ["nosuchmodel", "../wp820", "WP820", ""])
def test_unknown_or_malformed_model_names_are_refused(name):
    with pytest.raises(ModelDefinitionError):
        load_model(name)


def test_paths_are_unique_and_well_formed(model):
    paths = [spec.path for spec in model.parameters.values() if spec.path is not None]
    assert len(paths) == len(set(paths))
    for path in paths:
        assert re.fullmatch(r"Device(\.([A-Za-z_]\w*|[1-9][0-9]*))*\.[A-Za-z_]\w*", path), path
        assert model.by_path(path).path == path
    assert model.by_path("Device.NoSuch.Thing") is None


def test_keys_name_their_instance(model):
    for key, spec in model.parameters.items():
        assert key == spec.key
        if spec.instance is not None:
            assert f".{spec.instance}." in key
            assert spec.template is not None and spec.template.replace("{n}", str(spec.instance)) == key


def test_both_accounts_have_every_per_account_setting(model):
    templates = {spec.template for spec in model.parameters.values() if spec.template}
    assert "sip.{n}.transport" in templates
    for template in templates:
        specs = model.instances_of(template)
        assert [s.instance for s in specs] == [1, 2], template
        for spec in specs:
            if spec.path is not None:
                assert f".VoiceProfile.{spec.instance}." in spec.path
    assert model.parameters["sip.1.transport"].pvalue == "P130"
    assert model.parameters["sip.2.transport"].pvalue == "P448"


def test_objects_contain_every_parent_of_every_path_parents_first(model):
    objects = model.objects()
    assert objects[0] == "Device."
    assert len(objects) == len(set(objects))
    assert all(o.endswith(".") for o in objects)
    position = {o: i for i, o in enumerate(objects)}
    for path in [s.path for s in model.parameters.values() if s.path] + objects:
        parts = path.rstrip(".").split(".")
        for depth in range(1, len(parts)):
            parent = ".".join(parts[:depth]) + "."
            assert parent in position, (path, parent)
            if path in position:
                assert position[parent] < position[path]
    assert "Device.Services.VoiceService.1.VoiceProfile.2.SIP." in position


def test_children_list_each_path_under_its_parent_once(model):
    listed = [child for o in model.objects() for child in model.children(o)]
    assert len(listed) == len(set(listed))
    expected = {s.path for s in model.parameters.values() if s.path} | set(model.objects()) - {"Device."}
    assert set(listed) == expected
    assert "Device.ManagementServer.URL" in model.children("Device.ManagementServer.")


def test_tables_cover_the_accounts(model):
    profiles = model.tables["Device.Services.VoiceService.1.VoiceProfile."]
    assert profiles.instances == (1, 2)
    assert model.by_path(profiles.count_path).default == len(profiles.instances)
    assert model.table_of("Device.Services.VoiceService.1.VoiceProfile.2.") is profiles
    assert model.table_of("Device.Services.VoiceService.1.VoiceProfile.") is profiles
    assert model.table_of("Device.ManagementServer.") is None
    for table in model.tables.values():
        for number in table.instances:
            assert table.instance_path(number) in model.objects()


# --- Agreement with Grandstream's daemon model and the WP820 template -------------------------------------------------


def test_every_path_exists_in_the_daemon_model_with_its_type_and_writability(model, daemon_rows):
    unknown = set()
    for spec in model.parameters.values():
        if spec.path is None:
            continue
        rows = _rows_for(spec.path, daemon_rows)
        if not rows:
            unknown.add(spec.path)
            continue
        for row in rows:
            assert row.type == spec.type.value, spec.path
            assert row.writable == spec.writable, spec.path
            assert row.reboot == spec.reboot, spec.path
    assert unknown == DELIBERATE_EXTENSIONS


def test_enums_ranges_and_lengths_are_no_wider_than_the_daemon_accepts(model, daemon_rows):
    for spec in model.parameters.values():
        if spec.path is None or not spec.writable:
            continue
        for row in _rows_for(spec.path, daemon_rows):
            if row.validator == "StringEnumValidator":
                assert spec.enum and set(spec.enum) <= set(row.constraint.split(",")), spec.path
            bounds = re.fullmatch(r"(?i)(?:unsignedInt|int)\[(-?\d+):(\d*)\]", row.constraint)
            if bounds and spec.range:
                assert spec.range[0] >= int(bounds[1]), spec.path
                assert bounds[2] == "" or spec.range[1] <= int(bounds[2]), spec.path
            size = re.fullmatch(r"(?i)string\((\d+)\)", row.constraint)
            if size and spec.max_length is not None:
                assert spec.max_length <= int(size[1]), spec.path
            if row.validator == "ASCIIValidator":
                assert spec.pattern == "[0-9A-Za-z]*", spec.path


def test_account_1_and_global_pvalues_agree_with_the_daemon(model, daemon_rows):
    """The daemon's own P-value for a path (first instance of a '!' list) is ours, where it has one."""
    checked = 0
    for spec in model.parameters.values():
        if spec.path is None or spec.pvalue is None or spec.instance == 2:
            continue
        daemon_pvalues = {row.pvalues.split("!")[0] for row in _rows_for(spec.path, daemon_rows)}
        numeric = {p for p in daemon_pvalues if p.isdigit()}
        if numeric:
            assert spec.pvalue[1:] in numeric, spec.path
            checked += 1
    assert checked >= 40


def test_pvalues_come_from_the_template_or_are_accounted_for(model, template):
    missing = {pvalue for pvalue in model.pvalue_defaults() if pvalue not in template}
    assert missing == set(PVALUES_NOT_IN_TEMPLATE)


def test_defaults_match_the_template_unless_the_guide_says_otherwise(model, template):
    differing = set()
    for pvalue, text in model.pvalue_defaults().items():
        row = template.get(pvalue)
        if row is None or "{$" in row["template_value"]:
            continue  # placeholders carry no default
        if row["template_value"] != text:
            differing.add(pvalue)
    assert differing == set(GUIDE_OVERRIDES_TEMPLATE)


def test_swap_suspects_are_exactly_the_pairs_notes_names(model):
    suspects = {s.pvalue for s in model.parameters.values() if s.swap_suspect and s.instance == 1}
    assert suspects == {"P183", "P2383", "P129", "P258", "P2347", "P2346", "P2311", "P2367", "P26021"}
    for spec in model.parameters.values():
        if spec.swap_suspect:
            assert all(s.swap_suspect for s in model.instances_of(spec.template))


# --- Security-guide defaults and the hardening surface ----------------------------------------------------------------

GUIDE_DEFAULTS = {
    "ssh.disabled": False,
    "ssh.port": 22,
    "tr069.enabled": True,
    "acs.connection_request_port": 7547,
    "sip.1.transport": "UDP",
    "sip.2.transport": "UDP",
    "sip.1.srtp_mode": "Disabled",
    "sip.2.srtp_mode": "Disabled",
    "sip.1.local_port": 5060,
    "sip.2.local_port": 5062,
    "sip.1.rtp_port_min": 50040,
    "ldap.connection_mode": "LDAP",
    "syslog.protocol": "UDP",
    "keypad.menu_access": "Unrestricted",
    "sip.1.active": "Enabled",
    "web.access_method": "HTTP",
    "web.port": 80,
    "web.admin_password": "admin",
    "bluetooth.enabled": False,
    "openvpn.enabled": False,
    "openvpn.port": 1194,
    "config.upgrade_via": "HTTPS",
    "sip.1.check_domain_certificates": False,
    "sip.1.validate_certificate_chain": False,
    "sip.1.accept_known_servers_only": False,
    "sip.1.check_user_id_incoming_invite": False,
    "sip.1.authenticate_incoming_invite": False,
    "sip.1.block_anonymous_calls": False,
}


@pytest.mark.parametrize(("key", "expected"), sorted(GUIDE_DEFAULTS.items()))
def test_factory_defaults_follow_the_security_guide(model, key, expected):
    assert model.parameters[key].default == expected


def test_pvalue_only_settings_and_their_numbers(model):
    expected = {
        "keypad.menu_access": "P1357",
        "sip.1.check_domain_certificates": "P2311",
        "sip.2.check_domain_certificates": "P2411",
        "sip.1.validate_certificate_chain": "P2367",
        "sip.2.validate_certificate_chain": "P2467",
        "sip.1.accept_known_servers_only": "P2347",
        "sip.2.accept_known_servers_only": "P2447",
        "sip.1.authenticate_incoming_invite": "P2346",
        "sip.2.authenticate_incoming_invite": "P2446",
        "sip.1.challenge_realm": "P26021",
        "sip.2.challenge_realm": "P26121",
        "upgrade.disable_sip_notify_auth": "P4428",
        "sip.1.srtp_key_length": "P2383",
        "sip.2.srtp_key_length": "P2483",
        "openvpn.enabled": "P7050",
        "openvpn.port": "P7052",
        "upgrade.validate_server_certificates": "P22030",
        "tr069.enabled": "P1409",
        "ldap.connection_mode": "P8037",
        "syslog.protocol": "P8402",
    }
    for key, pvalue in expected.items():
        spec = model.parameters[key]
        assert (spec.path, spec.pvalue, spec.writable, spec.exposed) == (None, pvalue, True, True), key
    assert model.parameters["tr069.enabled"].reboot


def test_bluetooth_is_advisory(model):
    spec = model.parameters["bluetooth.enabled"]
    assert (spec.exposed, spec.path, spec.pvalue, spec.default) == (False, None, None, False)
    assert [s.key for s in model.parameters.values() if not s.exposed] == ["bluetooth.enabled"]


def test_secrets_are_the_passwords(model):
    secrets = {s.key for s in model.parameters.values() if s.secret}
    assert {"web.admin_password", "acs.password", "acs.connection_request_password", "config.xml_password"} <= secrets
    assert all("password" in key for key in secrets)


def test_inform_and_notification_attributes_follow_tr106(model):
    assert {s.path for s in model.forced_inform()} == {
        "Device.DeviceSummary",
        "Device.DeviceInfo.HardwareVersion",
        "Device.DeviceInfo.SoftwareVersion",
        "Device.DeviceInfo.ProvisioningCode",
        "Device.ManagementServer.ParameterKey",
        "Device.ManagementServer.ConnectionRequestURL",
        "Device.LAN.IPAddress",
    }
    forced = {s.key for s in model.parameters.values() if s.active_notify is ActiveNotify.FORCE_ENABLED}
    assert forced == {"device.software_version", "device.provisioning_code", "acs.connection_request_url"}
    assert all(model.parameters[key].notification == 2 for key in forced)
    url = model.parameters["acs.connection_request_url"]
    assert (url.writable, url.source) == (False, Source.RUNTIME)
    assert url.depends_on == ("lan.ip_address", "acs.connection_request_port")


# --- Validation -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "good", "bad"),
    [
        ("sip.1.transport", ["UDP", "TCP", "TLS"], ["SCTP", "tls", "", 2]),
        ("sip.2.srtp_mode", ["EnabledAndForced"], ["Optional", "enabledandforced"]),
        ("web.access_method", ["HTTPS"], ["https", "FTP"]),
        ("keypad.menu_access", ["ConstraintMode"], ["Constraint Mode", 2]),
        ("acs.connection_request_port", [1025, 7547, 65535], [1024, 65536, 0, -1, "7547", True]),
        ("sip.1.rtp_port_min", [1024, 50040, 65400], [50041, 1022, 65402]),
        ("acs.periodic_inform_interval", [1, 86400, 4294967295], [0, 4294967296]),
        ("acs.stun_maximum_keepalive_period", [-1, 0, 60], [-2]),
        ("web.admin_password", ["Abc123", "x" * 32], ["Abc12", "x" * 33, "pass word1", "p@ssw0rd!", "pässwort"]),
        ("acs.connection_request_username", ["", "000B82A1B2C3"], ["user-name", "a b"]),
        ("config.xml_password", ["!Secr3t~Pass#", ""], ["has space", "x" * 33, "tab\there"]),
        (
            "acs.url",
            ["https://acs.example.net:7548/cwmp", "http://192.0.2.1:7547/"],
            ["http://localhost:7547/", "ftp://acs.example.net"],
        ),
        ("ssh.disabled", [True, False], [1, 0, "true", None]),
        ("acs.periodic_inform_time", [UNKNOWN_TIME, datetime(2024, 1, 1, tzinfo=timezone.utc)], ["2024-01-01"]),
        ("sip.1.challenge_realm", ["", "example.net"], ["x" * 65]),
    ],
)
def test_validate_accepts_and_rejects(model, key, good, bad):
    spec = model.parameters[key]
    for value in good:
        spec.validate(value)
    for value in bad:
        with pytest.raises(InvalidValue) as caught:
            spec.validate(value)
        assert caught.value.key == key


def test_secret_values_never_appear_in_errors(model):
    spec = model.parameters["web.admin_password"]
    for value in ["Qz9", "hunter 2 with spaces", "Z" * 40]:
        with pytest.raises(InvalidValue) as caught:
            spec.validate(value)
        assert value not in str(caught.value)
    with pytest.raises(InvalidValue) as caught:
        model.parameters["sip.1.transport"].validate("QUIC")
    assert "QUIC" in str(caught.value)


def test_parse_and_format_use_the_wire_text(model):
    port = model.parameters["acs.connection_request_port"]
    assert port.parse("30005") == 30005
    assert port.format(30005) == "30005"
    with pytest.raises(InvalidValue):
        port.parse("80")
    with pytest.raises(InvalidValue):
        port.parse("seventy")
    ssh = model.parameters["ssh.disabled"]
    assert ssh.parse("1") is True and ssh.parse("false") is False
    assert ssh.format(True) == "true"


def test_weak_defaults_are_exactly_the_ones_that_fail_validation(model):
    for spec in model.parameters.values():
        try:
            spec.validate(spec.default)
            valid = True
        except InvalidValue:
            valid = False
        assert valid is not spec.weak_default, spec.key
    assert {s.key for s in model.parameters.values() if s.weak_default} == {"web.admin_password", "web.user_password"}


# --- P-value conversion -----------------------------------------------------------------------------------------------


def test_pvalue_round_trip_for_every_parameter(model):
    for spec in model.parameters.values():
        for value in _samples(spec):
            text = spec.to_pvalue(value)
            assert isinstance(text, str)
            assert spec.from_pvalue(text) == value, (spec.key, value)


@pytest.mark.parametrize(
    ("key", "value", "text"),
    [
        ("sip.1.transport", "TLS", "2"),
        ("sip.2.transport", "TCP", "1"),
        ("web.access_method", "HTTPS", "1"),
        ("web.access_method", "HTTP", "0"),
        ("sip.1.srtp_mode", "EnabledAndForced", "2"),
        ("sip.1.srtp_key_length", "AES256", "2"),
        ("sip.1.uri_scheme", "SIPS", "1"),
        ("sip.1.active", "Disabled", "0"),
        ("keypad.menu_access", "ConstraintMode", "2"),
        ("config.upgrade_via", "HTTPS", "2"),
        ("syslog.protocol", "SSL/TLS", "1"),
        ("syslog.level", "Error", "4"),
        ("ldap.connection_mode", "LDAPS", "1"),
        ("ssh.disabled", True, "1"),
        ("tr069.enabled", False, "0"),
        ("ssh.port", 2222, "2222"),
        ("acs.url", "https://acs.example.net/", "https://acs.example.net/"),
    ],
)
def test_to_pvalue_uses_the_vendor_numbers(model, key, value, text):
    spec = model.parameters[key]
    assert spec.to_pvalue(value) == text
    assert spec.from_pvalue(text) == value


def test_unmapped_pvalue_texts_and_wrong_types_are_refused(model):
    srtp = model.parameters["sip.1.srtp_mode"]
    with pytest.raises(InvalidValue):
        srtp.from_pvalue("3")  # Optional: no TR-069 name
    with pytest.raises(InvalidValue):
        srtp.to_pvalue("Optional")
    with pytest.raises(InvalidValue):
        model.parameters["ssh.port"].from_pvalue("twenty-two")
    with pytest.raises(InvalidValue):
        model.parameters["ssh.disabled"].to_pvalue(1)


def test_from_pvalue_carries_device_state_that_a_write_would_refuse(model):
    admin = model.parameters["web.admin_password"]
    assert admin.from_pvalue("p@ss word") == "p@ss word"
    assert admin.to_pvalue("admin") == "admin"


def test_by_pvalue_finds_shared_and_single_pvalues(model):
    assert [s.key for s in model.by_pvalue("P130")] == ["sip.1.transport"]
    assert model.by_pvalue("130") == model.by_pvalue("P130")
    assert [s.key for s in model.by_pvalue("P39")] == ["sip.1.rtp_port_min", "sip.2.rtp_port_min"]
    assert model.by_pvalue("P99999") == []


def test_pvalue_defaults_are_the_full_factory_state(model):
    defaults = model.pvalue_defaults()
    assert defaults["P1650"] == "0" and defaults["P276"] == "0" and defaults["P2"] == "admin"
    assert defaults["P39"] == "50040" and defaults["P40"] == "5060" and defaults["P413"] == "5062"
    assert defaults["P1409"] == "1" and defaults["P4518"] == "7547" and defaults["P212"] == "2"
    pvalues = {s.pvalue for s in model.parameters.values() if s.pvalue}
    assert set(defaults) == pvalues
    assert all(re.fullmatch(r"P[1-9][0-9]*", p) for p in defaults)


# --- Writing through a configuration file -----------------------------------------------------------------------------


def test_to_pvalues_converts_and_validates(model):
    assert model.to_pvalues({"web.access_method": "HTTPS", "web.port": 8443, "ssh.disabled": True}) == {
        "P1650": "1",
        "P901": "8443",
        "P276": "1",
    }
    with pytest.raises(InvalidValue):
        model.to_pvalues({"web.port": 0})
    with pytest.raises(InvalidValue):
        model.to_pvalues({"no.such.key": 1})
    with pytest.raises(InvalidValue):
        model.to_pvalues({"bluetooth.enabled": False})  # no known P-value
    with pytest.raises(InvalidValue):
        model.to_pvalues({"device.up_time": 5})  # runtime value


def test_swap_suspect_settings_must_go_to_every_account_with_one_value(model):
    both = {"sip.1.srtp_mode": "EnabledAndForced", "sip.2.srtp_mode": "EnabledAndForced"}
    assert model.to_pvalues(both) == {"P183": "2", "P443": "2"}
    with pytest.raises(InvalidValue, match="sip.2.srtp_mode"):
        model.to_pvalues({"sip.1.srtp_mode": "EnabledAndForced"})
    with pytest.raises(InvalidValue):
        model.to_pvalues({"sip.1.srtp_mode": "EnabledAndForced", "sip.2.srtp_mode": "Disabled"})
    # Settings whose numbering is confirmed may differ per account.
    assert model.to_pvalues({"sip.1.transport": "TLS", "sip.2.transport": "UDP"}) == {"P130": "2", "P448": "0"}


def test_one_pvalue_cannot_receive_two_values(model):
    assert model.to_pvalues({"sip.1.rtp_port_min": 40000, "sip.2.rtp_port_min": 40000}) == {"P39": "40000"}
    with pytest.raises(InvalidValue, match="P39"):
        model.to_pvalues({"sip.1.rtp_port_min": 40000, "sip.2.rtp_port_min": 40010})


# --- The loader's own checks ------------------------------------------------------------------------------------------

_DEVICE = """
[device]
name = "t"
title = "T"
manufacturer = "M"
oui = "000000"
oui_aliases = []
product_class = "T"
software_version = "1"
"""


def _model(parameters: str, tables: str = "") -> str:
    return _DEVICE + tables + parameters


def test_a_minimal_model_with_an_instanced_parameter_expands():
    text = _model(
        """
[[parameter]]
key = "acct.{n}.port"
instances = [1, 2]
title = "Account {n} port"
path = "Device.Acct.{n}.Port"
type = "unsignedInt"
pvalue = ["P10", "P20"]
default = [5060, 5062]
range = [1, 65535]
""",
        tables='[[table]]\npath = "Device.Acct."\ninstances = [1, 2]\n',
    )
    model = parse_model(text)
    assert [s.key for s in model.parameters.values()] == ["acct.1.port", "acct.2.port"]
    assert model.parameters["acct.2.port"].path == "Device.Acct.2.Port"
    assert model.parameters["acct.2.port"].title == "Account 2 port"
    assert model.pvalue_defaults() == {"P10": "5060", "P20": "5062"}
    assert model.objects() == ["Device.", "Device.Acct.", "Device.Acct.1.", "Device.Acct.2."]


_PARAMETER = """
[[parameter]]
key = "a.b"
title = "A"
path = "Device.A.B"
type = "string"
pvalue = "P1"
default = "x"
"""


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not toml [", "not valid TOML"),
        (_PARAMETER, "missing [device]"),
        (_model(_PARAMETER + "colour = 'red'\n"), "unknown field(s) colour"),
        (_model(_PARAMETER + _PARAMETER), "duplicate key"),
        (_model(_PARAMETER.replace('pvalue = "P1"', 'pvalue = "130"')), "pvalue must look like P130"),
        (_model(_PARAMETER + 'enum = ["x", "y"]\n'), "needs a pvalue_map"),
        (_model(_PARAMETER + 'enum = ["x", "y"]\npvalue_map = { x = "0" }\n'), "exactly the enum values"),
        (_model(_PARAMETER.replace('default = "x"', "default = 3")), "default: expected string"),
        (_model(_PARAMETER + "max_length = 0\n"), "longer than 0"),
        (_model(_PARAMETER.replace('type = "string"', 'type = "float"')), "float"),
        (_model(_PARAMETER.replace('path = "Device.A.B"', 'path = "Device.A.B."')), "malformed path"),
        (_model(_PARAMETER.replace('path = "Device.A.B"', 'path = "Device.A.3.B"')), "instance of no declared table"),
        (_model(_PARAMETER + "swap_suspect = true\n"), "swap_suspect applies to instanced"),
        (_model(_PARAMETER + 'source = "static"\n'), "has no pvalue"),
        (_model(_PARAMETER + 'depends_on = ["x.y"]\n'), "depends_on names unknown"),
        (_model(_PARAMETER.replace('key = "a.b"', 'key = "a.{n}"')), "need instances"),
        (_model(_PARAMETER + 'active_notify = "forceEnabled"\nnotification = 1\n'), "always active"),
    ],
)
def test_broken_models_are_refused_with_the_problem_named(text, problem):
    with pytest.raises(ModelDefinitionError) as caught:
        parse_model(text, source="broken.toml")
    assert problem in str(caught.value)


def test_a_broken_secret_default_is_reported_without_its_value():
    text = _model(_PARAMETER + 'secret = true\npattern = "[0-9]*"\n').replace('default = "x"', 'default = "Hunter2"')
    with pytest.raises(ModelDefinitionError) as caught:
        parse_model(text)
    assert "Hunter2" not in str(caught.value)
    assert "does not match" in str(caught.value)


def test_enum_texts_are_their_own_wire_form(model):
    for spec in model.parameters.values():
        for member in spec.enum or ():
            assert format_value(spec.type, member) == member
