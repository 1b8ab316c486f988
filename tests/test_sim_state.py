"""PhoneState: factory defaults, factory reset, JSON persistence that survives a restart, refusal of bad files."""

from __future__ import annotations

import json
from dataclasses import asdict

import pytest

from cwmp_models import messages as m
from cwmp_models.datamodel import InvalidValue, load_model
from cwmp_models.types import XsdType
from wp820_sim import Phone, PhoneState, StateError, state_path
from wp820_sim.state import STATE_VERSION

MODEL = load_model("wp820")
SERIAL = "000b82a1b2c3"
SECRET = "Sup3rSecretPass"


def fresh(**settings) -> PhoneState:
    return PhoneState.factory(MODEL, serial=SERIAL, mac="00:0B:82:A1:B2:C3", settings=settings)


def busy_phone() -> Phone:
    """A phone whose state uses every field: settings, attributes, events, transfers, results, deletions."""
    phone = Phone(MODEL, fresh(**{"acs.url": "https://acs.example.net/cwmp"}), clock=lambda: 1.8e9, ip="127.0.0.7")
    phone.reboot()
    phone.start_session()
    phone.inform_delivered()
    phone.handle(
        m.SetParameterValues(
            [
                m.ParameterValueStruct("Device.ManagementServer.Password", SECRET),
                m.ParameterValueStruct("Device.X_GRANDSTREAM_Syslog.ServerAddress", "syslog.example.net"),
                m.ParameterValueStruct("Device.ManagementServer.STUNServerPort", 3479, XsdType.UNSIGNED_INT),
            ],
            "key-1",
        )
    )
    phone.handle(
        m.SetParameterAttributes(
            [m.SetParameterAttributesStruct("Device.UserInterface.X_GRANDSTREAM_DisableSSH", True, 2)]
        )
    )
    phone.handle(m.DeleteObject("Device.Services.VoiceService.1.VoiceProfile.2.", "key-2"))
    phone.handle(m.Reboot("reboot-1"))
    phone.handle(m.Download("dl-1", "3 Vendor Configuration File", "https://files.example.net/a", "u", SECRET))
    phone.handle(m.Upload("up-1", "1 Vendor Configuration File", "https://files.example.net/b"))
    upload = [a for a in phone.take_actions() if a.__class__.__name__ == "UploadAction"][0]
    phone.begin_transfer(upload.transfer_id)
    phone.complete_upload(upload.transfer_id)
    phone.local_change("ssh.disabled", True)
    phone.session_ended(succeeded=True)
    phone.start_session(["2 PERIODIC"])
    phone.session_ended(succeeded=False)
    return phone


def test_factory_state_is_the_models_defaults_with_the_site_settings():
    state = fresh(**{"acs.url": "https://acs.example.net/cwmp", "acs.periodic_inform_enable": True})
    assert state.mac == SERIAL and state.oui == MODEL.oui and state.product_class == MODEL.product_class
    assert state.software_version == MODEL.software_version
    assert state.pvalues == {**MODEL.pvalue_defaults(), "P4503": "https://acs.example.net/cwmp", "P4506": "1"}
    assert state.site_defaults == {"P4503": "https://acs.example.net/cwmp", "P4506": "1"}
    assert not state.bootstrapped and state.pending_events == [] and state.version == STATE_VERSION


def test_site_settings_are_validated():
    with pytest.raises(InvalidValue):
        fresh(**{"acs.url": "http://localhost/"})


@pytest.mark.parametrize(("serial", "mac"), [("", SERIAL), ("../etc", SERIAL), (SERIAL, "00:0B:82"), (SERIAL, "zz")])
def test_identity_must_be_well_formed(serial, mac):
    with pytest.raises(StateError):
        PhoneState.factory(MODEL, serial=serial, mac=mac)


def test_factory_reset_keeps_identity_firmware_and_site_defaults_only():
    phone = busy_phone()
    phone.state.software_version = "1.0.3.7"
    reset = phone.state.factory_reset(MODEL)
    assert (reset.serial, reset.mac, reset.oui, reset.software_version) == (SERIAL, SERIAL, MODEL.oui, "1.0.3.7")
    assert reset.pvalues == {**MODEL.pvalue_defaults(), "P4503": "https://acs.example.net/cwmp"}
    assert reset == PhoneState.from_json(reset.to_json())
    assert reset.transfers == [] and reset.transfer_results == [] and reset.deleted_objects == []
    assert reset.notification == {} and reset.reboot_command_key is None and not reset.bootstrapped


def test_json_round_trip_keeps_everything():
    state = busy_phone().state
    assert state.transfers and state.transfer_results and state.deleted_objects and state.pending_reboot
    assert state.pending_events and state.notification and state.agent_values and state.reboot_command_key
    assert PhoneState.from_json(state.to_json()) == state


def test_json_holds_every_field_as_the_dataclass_would():
    """to_json builds its document by hand (for speed): it must be the dataclass's own field-for-field picture."""
    state = busy_phone().state
    expected = asdict(state)
    expected["pending_events"] = [list(event) for event in state.pending_events]
    assert json.loads(state.to_json()) == expected
    assert state.to_json() == json.dumps(expected, sort_keys=True, separators=(",", ":"))


def test_a_restarted_phone_remembers_its_state(tmp_path):
    phone = busy_phone()
    path = state_path(tmp_path, phone.state.serial)
    phone.state.save(path)
    restarted = Phone(MODEL, PhoneState.load(path), clock=lambda: 1.8e9 + 60, ip="127.0.0.7")
    restarted.reboot()
    names = ["Device.ManagementServer.", "Device.UserInterface.", "Device.Services."]
    reply = restarted.handle(m.GetParameterValues(names))
    assert reply == phone.handle(m.GetParameterValues(names))
    assert restarted.value("acs.password") == SECRET and restarted.parameter_key == "key-2"
    inform = restarted.start_session()
    assert [(e.event_code, e.command_key) for e in inform.event] == [
        ("1 BOOT", ""),
        ("2 PERIODIC", ""),
        ("4 VALUE CHANGE", ""),
        ("7 TRANSFER COMPLETE", ""),
        ("M Reboot", "reboot-1"),
        ("M Upload", "up-1"),
    ]
    assert restarted.value("syslog.server") == "syslog.example.net" and restarted.state.pending_reboot == {}
    assert [a.command_key for a in restarted.take_actions()] == ["dl-1"]


def test_save_replaces_atomically_and_leaves_no_temporary_files(tmp_path):
    path = state_path(tmp_path, SERIAL)
    state = fresh()
    state.save(path)
    state.pvalues["P276"] = "1"
    state.save(path, fsync=False)
    assert PhoneState.load(path).pvalues["P276"] == "1"
    assert [p.name for p in tmp_path.iterdir()] == [f"{SERIAL}.json"]


def test_save_into_a_missing_directory_fails_clearly(tmp_path):
    with pytest.raises(StateError, match="cannot write state"):
        fresh().save(tmp_path / "missing" / "x.json")


def test_load_of_a_missing_file_names_it(tmp_path):
    with pytest.raises(StateError, match="nobody.json"):
        PhoneState.load(tmp_path / "nobody.json")


def corrupt(document: dict) -> str:
    return json.dumps(document)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda d: d.update(version=99), "version"),
        (lambda d: d.update(extra=1), "unknown field"),
        (lambda d: d.pop("serial"), "serial"),
        (lambda d: d.update(pvalues={"P2": 5}), "pvalues"),
        (lambda d: d.update(notification={"Device.X": 7}), "notification"),
        (lambda d: d.update(pending_events=[["0 BOOTSTRAP"]]), "pending_events"),
        (lambda d: d.update(retry_count=-1), "retry_count"),
        (lambda d: d.update(bootstrapped="yes"), "bootstrapped"),
        (lambda d: d.update(transfers=[{"transfer_id": 1}]), "malformed"),
        (lambda d: d.update(mac="nope"), "mac"),
    ],
)
def test_malformed_state_is_refused_without_quoting_secrets(tmp_path, change, problem):
    document = json.loads(busy_phone().state.to_json())
    change(document)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(document))
    with pytest.raises(StateError, match=problem) as caught:
        PhoneState.load(path)
    assert SECRET not in str(caught.value) and "bad.json" in str(caught.value)


@pytest.mark.parametrize("text", ["", "{", "[]", "\"state\""])
def test_non_state_json_is_refused(tmp_path, text):
    path = tmp_path / "x.json"
    path.write_text(text)
    with pytest.raises(StateError):
        PhoneState.load(path)


def test_state_path_refuses_serials_that_are_not_file_names(tmp_path):
    assert state_path(tmp_path, SERIAL) == tmp_path / f"{SERIAL}.json"
    with pytest.raises(StateError):
        state_path(tmp_path, "../escape")
