"""The simulated phone's pure core: Informs and events, every RPC and fault, transfers, configuration files, facts.

Everything is driven through Phone's public methods with messages, as the network layer drives it; no sockets.
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cwmp_models import gsconfig
from cwmp_models import messages as m
from cwmp_models.datamodel import InvalidValue, load_model, parse_model
from cwmp_models.types import XsdType
from wp820_sim import (
    DownloadAction,
    FactoryResetAction,
    Phone,
    PhoneError,
    PhoneState,
    Quirks,
    RebootAction,
    ScheduleInformAction,
    UploadAction,
    firmware_image,
)

MODEL = load_model("wp820")
SERIAL = "000b82a1b2c3"
T0 = 1_800_000_000.0

MS = "Device.ManagementServer."
ACS_URL = MS + "URL"
CR_PORT = MS + "X_GRANDSTREAM_ConnectionRequestPort"
CR_URL = MS + "ConnectionRequestURL"
PARAMETER_KEY = MS + "ParameterKey"
PERIODIC_ENABLE = MS + "PeriodicInformEnable"
PERIODIC_INTERVAL = MS + "PeriodicInformInterval"
PERIODIC_TIME = MS + "PeriodicInformTime"
UDP_CR = MS + "UDPConnectionRequestAddress"
SSH_DISABLED = "Device.UserInterface.X_GRANDSTREAM_DisableSSH"
ADMIN_PASSWORD = "Device.UserInterface.X_GRANDSTREAM_AdminLoginPassword"
SOFTWARE_VERSION = "Device.DeviceInfo.SoftwareVersion"
UP_TIME = "Device.DeviceInfo.UpTime"
SYSLOG_SERVER = "Device.X_GRANDSTREAM_Syslog.ServerAddress"
PROFILES = "Device.Services.VoiceService.1.VoiceProfile."
PROFILE_COUNT = "Device.Services.VoiceService.1.VoiceProfileNumberOfEntries"
TRANSPORT_2 = PROFILES + "2.SIP.UserAgentTransport"
RTP_MIN_1 = PROFILES + "1.RTP.LocalPortMin"
RTP_MIN_2 = PROFILES + "2.RTP.LocalPortMin"
CONFIG_URL = "https://acs.example.net/files/one-time/abc"


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def make_phone(*, quirks: Quirks = Quirks(), ip: str = "127.0.0.5", bootstrapped: bool = True, **settings) -> Phone:
    """A phone powered on; by default its first (bootstrap) session has been delivered."""
    state = PhoneState.factory(MODEL, serial=SERIAL, mac=SERIAL, settings=settings)
    phone = Phone(MODEL, state, clock=Clock(), ip=ip, quirks=quirks)
    phone.reboot()
    if bootstrapped:
        deliver(phone)
    return phone


def deliver(phone: Phone, events=()) -> m.Inform:
    """One whole successful session with no ACS requests."""
    inform = phone.start_session(events)
    phone.inform_delivered()
    phone.session_ended(succeeded=True)
    return inform


def events_of(inform: m.Inform) -> list[tuple[str, str]]:
    return [(e.event_code, e.command_key) for e in inform.event]


def params_of(inform: m.Inform) -> dict[str, object]:
    return {p.name: p.value for p in inform.parameter_list}


def pvs(name: str, value, xsd: XsdType = XsdType.STRING) -> m.ParameterValueStruct:
    return m.ParameterValueStruct(name, value, xsd)


def spv(phone: Phone, *items: m.ParameterValueStruct, key: str = "") -> m.Message:
    return phone.handle(m.SetParameterValues(list(items), key))


def gpv(phone: Phone, *names: str) -> dict[str, object]:
    reply = phone.handle(m.GetParameterValues(list(names)))
    assert isinstance(reply, m.GetParameterValuesResponse), reply
    return {p.name: p.value for p in reply.parameter_list}


def set_notification(phone: Phone, name: str, level: int) -> m.Message:
    return phone.handle(m.SetParameterAttributes([m.SetParameterAttributesStruct(name, True, level)]))


def spv_faults(reply: m.Message) -> dict[str, int]:
    assert isinstance(reply, m.Fault) and reply.fault_code == 9003, reply
    return {f.parameter_name: f.fault_code for f in reply.set_parameter_values_faults}


# --- Inform and events ---------------------------------------------------------------------------------------------


def test_first_boot_informs_bootstrap_and_boot_with_identity_and_forced_parameters():
    phone = make_phone(bootstrapped=False)
    inform = phone.start_session()
    assert events_of(inform) == [("0 BOOTSTRAP", ""), ("1 BOOT", "")]
    assert inform.device_id == m.DeviceId("Grandstream", "000B82", "WP820", SERIAL)
    assert inform.current_time == datetime.fromtimestamp(T0, timezone.utc)
    assert inform.max_envelopes == 1 and inform.retry_count == 0
    forced = {spec.path for spec in MODEL.forced_inform()}
    assert set(params_of(inform)) == forced
    assert params_of(inform)[CR_URL] == "http://127.0.0.5:7547/"
    assert params_of(inform)[PARAMETER_KEY] == ""
    assert params_of(inform)[SOFTWARE_VERSION] == MODEL.software_version


def test_undelivered_events_repeat_after_a_failed_session_with_a_growing_retry_count():
    phone = make_phone(bootstrapped=False)
    phone.start_session()
    phone.session_ended(succeeded=False)
    retry = phone.start_session()
    assert events_of(retry) == [("0 BOOTSTRAP", ""), ("1 BOOT", "")]
    assert retry.retry_count == 1
    phone.inform_delivered()
    phone.session_ended(succeeded=True)
    later = phone.start_session(["2 PERIODIC"])
    assert events_of(later) == [("2 PERIODIC", "")]
    assert later.retry_count == 0


def test_bootstrap_repeats_until_an_inform_carrying_it_is_acknowledged():
    phone = make_phone(bootstrapped=False)
    phone.start_session()
    phone.session_ended(succeeded=False)
    phone.reboot()  # still never bootstrapped
    assert ("0 BOOTSTRAP", "") in events_of(phone.start_session())
    phone.inform_delivered()
    phone.session_ended(succeeded=True)
    phone.reboot()
    assert events_of(phone.start_session()) == [("1 BOOT", "")]


def test_inform_delivered_without_an_inform_is_an_error():
    phone = make_phone()
    with pytest.raises(PhoneError):
        phone.inform_delivered()


def test_numbered_events_are_single_and_method_events_are_per_command_key():
    phone = make_phone()
    phone.start_session(["2 PERIODIC", m.EventStruct("M ScheduleInform", "a")])
    phone.session_ended(succeeded=False)
    inform = phone.start_session(["2 PERIODIC", m.EventStruct("M ScheduleInform", "b"), "M ScheduleInform"])
    assert events_of(inform) == [
        ("2 PERIODIC", ""),
        ("M ScheduleInform", "a"),
        ("M ScheduleInform", "b"),
        ("M ScheduleInform", ""),
    ]


def test_events_queued_during_a_session_survive_its_inform_response():
    phone = make_phone()
    phone.start_session(["2 PERIODIC"])
    assert phone.handle(m.Reboot("r1")) == m.RebootResponse()
    phone.inform_delivered()
    phone.session_ended(succeeded=True)
    phone.start_session(["6 CONNECTION REQUEST"])  # the ACS asked while the phone was not yet rebooted
    phone.session_ended(succeeded=False)
    phone.reboot()
    assert events_of(phone.start_session()) == [("1 BOOT", ""), ("M Reboot", "r1")]


def test_reboot_rpc_gives_an_action_and_boot_with_m_reboot_and_its_command_key():
    phone = make_phone()
    phone.start_session(["6 CONNECTION REQUEST"])
    phone.inform_delivered()
    assert phone.handle(m.Reboot("window-7")) == m.RebootResponse()
    phone.session_ended(succeeded=True)
    assert phone.take_actions() == [RebootAction("Reboot RPC")]
    assert phone.take_actions() == []
    phone.reboot()
    assert events_of(phone.start_session()) == [("1 BOOT", ""), ("M Reboot", "window-7")]
    phone.inform_delivered()
    phone.reboot()  # a power cycle the ACS did not ask for
    assert events_of(phone.start_session()) == [("1 BOOT", "")]


def test_an_undelivered_connection_request_event_is_dropped_at_reboot_but_others_are_kept():
    phone = make_phone()
    phone.start_session(["6 CONNECTION REQUEST", "2 PERIODIC"])
    phone.session_ended(succeeded=False)
    phone.reboot()
    assert events_of(phone.start_session()) == [("1 BOOT", ""), ("2 PERIODIC", "")]


def test_schedule_inform_becomes_an_action_whose_events_open_a_session():
    phone = make_phone()
    assert phone.handle(m.ScheduleInform(30, "sched-1")) == m.ScheduleInformResponse()
    [action] = phone.take_actions()
    assert action == ScheduleInformAction(30, "sched-1")
    inform = phone.start_session(action.events)
    assert events_of(inform) == [("3 SCHEDULED", ""), ("M ScheduleInform", "sched-1")]


def test_schedule_inform_without_delay_is_refused():
    reply = make_phone().handle(m.ScheduleInform(0, "x"))
    assert isinstance(reply, m.Fault) and reply.fault_code == 9003


def test_acs_url_change_makes_the_next_session_a_bootstrap():
    phone = make_phone()
    phone.start_session(["6 CONNECTION REQUEST"])
    phone.inform_delivered()
    assert spv(phone, pvs(ACS_URL, "https://acs2.example.net/cwmp")) == m.SetParameterValuesResponse(0)
    phone.session_ended(succeeded=True)
    assert phone.acs_url == "https://acs2.example.net/cwmp"
    assert events_of(phone.start_session(["2 PERIODIC"])) == [("0 BOOTSTRAP", ""), ("2 PERIODIC", "")]


def test_retry_window_follows_tr069_from_the_models_retry_parameters():
    phone = make_phone()
    assert phone.retry_window() == (0.0, 0.0)
    windows = []
    for _ in range(12):
        phone.session_ended(succeeded=False)
        windows.append(phone.retry_window())
    assert windows[0] == (5, 10) and windows[1] == (10, 20)
    assert windows[9] == windows[11] == (2560, 5120)
    phone.session_ended(succeeded=True)
    assert phone.retry_window() == (0.0, 0.0)


def test_session_wanted_while_anything_waits_for_delivery():
    phone = make_phone()
    assert not phone.session_wanted()
    phone.start_session(["2 PERIODIC"])
    phone.session_ended(succeeded=False)
    assert phone.session_wanted()
    deliver(phone)
    assert not phone.session_wanted()


# --- VALUE CHANGE ---------------------------------------------------------------------------------------------------


def test_a_keypad_change_of_an_actively_notified_parameter_notifies_once_delivered():
    phone = make_phone()
    assert set_notification(phone, SSH_DISABLED, 2) == m.SetParameterAttributesResponse()
    assert phone.value_change_pending() == 0
    assert phone.local_change("ssh.disabled", True) == 2
    assert phone.session_wanted()
    inform = phone.start_session()
    assert events_of(inform) == [("4 VALUE CHANGE", "")]
    assert params_of(inform)[SSH_DISABLED] is True
    phone.session_ended(succeeded=False)  # not delivered: reported again
    inform = phone.start_session()
    assert ("4 VALUE CHANGE", "") in events_of(inform)
    phone.inform_delivered()
    phone.session_ended(succeeded=True)
    assert phone.value_change_pending() == 0
    assert "4 VALUE CHANGE" not in [e for e, _ in events_of(phone.start_session(["2 PERIODIC"]))]


def test_a_passive_notification_waits_for_the_next_inform():
    phone = make_phone()
    set_notification(phone, SSH_DISABLED, 1)
    assert phone.local_change(SSH_DISABLED, "true") == 1
    assert not phone.session_wanted()
    inform = phone.start_session(["2 PERIODIC"])
    assert ("4 VALUE CHANGE", "") in events_of(inform) and params_of(inform)[SSH_DISABLED] is True


def test_changes_by_the_acs_own_set_parameter_values_do_not_notify():
    phone = make_phone()
    set_notification(phone, SSH_DISABLED, 2)
    assert spv(phone, pvs(SSH_DISABLED, True, XsdType.BOOLEAN)) == m.SetParameterValuesResponse(0)
    assert phone.value_change_pending() == 0
    inform = phone.start_session(["2 PERIODIC"])
    assert events_of(inform) == [("2 PERIODIC", "")] and SSH_DISABLED not in params_of(inform)


def test_a_side_effect_of_an_acs_change_notifies_the_parameter_it_changed():
    phone = make_phone()
    spv(phone, pvs(CR_PORT, 30005, XsdType.UNSIGNED_INT))
    assert phone.value_change_pending() == 2  # ConnectionRequestURL is forced active
    inform = phone.start_session()
    assert events_of(inform) == [("4 VALUE CHANGE", "")]
    assert params_of(inform)[CR_URL] == "http://127.0.0.5:30005/"
    assert CR_PORT not in params_of(inform)


def test_changed_secrets_notify_with_an_empty_value():
    phone = make_phone()
    set_notification(phone, ADMIN_PASSWORD, 1)
    phone.local_change("web.admin_password", "Str0ngPassw0rd")
    inform = phone.start_session()
    assert ("4 VALUE CHANGE", "") in events_of(inform)
    assert params_of(inform)[ADMIN_PASSWORD] == ""


def test_the_stun_binding_notifies_when_the_acs_asked_for_it():
    phone = make_phone()
    assert phone.set_udp_connection_request_address("192.0.2.7:4000", nat_detected=True) == 0
    set_notification(phone, UDP_CR, 2)
    assert phone.set_udp_connection_request_address("192.0.2.7:4001", nat_detected=True) == 2
    assert params_of(phone.start_session())[UDP_CR] == "192.0.2.7:4001"
    assert gpv(phone, MS + "NATDetected") == {MS + "NATDetected": True}


# --- GetParameterNames ------------------------------------------------------------------------------------------------


def names(reply: m.Message) -> dict[str, bool]:
    assert isinstance(reply, m.GetParameterNamesResponse), reply
    return {info.name: info.writable for info in reply.parameter_list}


def test_get_parameter_names_of_the_empty_path():
    phone = make_phone()
    assert names(phone.handle(m.GetParameterNames("", True))) == {"Device.": False}
    everything = names(phone.handle(m.GetParameterNames("", False)))
    paths = {spec.path for spec in MODEL.parameters.values() if spec.path}
    assert {n for n in everything if not n.endswith(".")} == paths
    assert {n for n in everything if n.endswith(".")} == set(MODEL.objects())


def test_get_parameter_names_next_level_lists_only_the_immediate_children():
    listed = names(make_phone().handle(m.GetParameterNames(MS, True)))
    assert listed == {
        path: MODEL.by_path(path).writable for path in MODEL.children(MS)
    }
    assert listed[ACS_URL] is True and listed[PARAMETER_KEY] is False
    assert all(name.count(".") == 2 for name in listed)
    top = names(make_phone().handle(m.GetParameterNames("Device.", True)))
    assert "Device.DeviceInfo." in top and "Device.DeviceInfo.UpTime" not in top


def test_get_parameter_names_of_a_partial_path_lists_the_object_and_everything_below():
    listed = list(names(make_phone().handle(m.GetParameterNames("Device.Services.", False))))
    assert listed[0] == "Device.Services."
    assert all(name.startswith("Device.Services.") for name in listed)
    assert PROFILES + "2.SIP.UserAgentTransport" in listed and PROFILES + "2." in listed


def test_get_parameter_names_marks_tables_and_their_instances_writable():
    listed = names(make_phone().handle(m.GetParameterNames("Device.Services.", False)))
    assert listed[PROFILES] is True and listed[PROFILES + "1."] is True
    assert listed["Device.Services.VoiceService."] is False and listed["Device.Services."] is False


def test_get_parameter_names_of_a_full_path():
    phone = make_phone()
    assert names(phone.handle(m.GetParameterNames(ACS_URL, False))) == {ACS_URL: True}
    fault = phone.handle(m.GetParameterNames(ACS_URL, True))
    assert isinstance(fault, m.Fault) and fault.fault_code == 9003


@pytest.mark.parametrize("path", ["Device.Nothing.", "Device.ManagementServer", "Device.ManagementServer.Nope", "X."])
def test_get_parameter_names_of_an_unknown_path_is_9005(path):
    fault = make_phone().handle(m.GetParameterNames(path, False))
    assert isinstance(fault, m.Fault) and fault.fault_code == 9005


# --- GetParameterValues -----------------------------------------------------------------------------------------------


def test_get_parameter_values_of_full_and_partial_paths():
    phone = make_phone()
    values = gpv(phone, PERIODIC_INTERVAL, "Device.DeviceInfo.")
    assert values[PERIODIC_INTERVAL] == 86400
    below = [n for n in names(phone.handle(m.GetParameterNames("Device.DeviceInfo.", False))) if not n.endswith(".")]
    assert list(values)[1:] == below
    assert values["Device.DeviceInfo.SerialNumber"] == SERIAL
    assert len(gpv(phone, "")) == sum(1 for spec in MODEL.parameters.values() if spec.path)


def test_get_parameter_values_reports_the_model_type_of_each_value():
    reply = make_phone().handle(m.GetParameterValues([PERIODIC_ENABLE, PERIODIC_INTERVAL, CR_URL]))
    assert [(p.type, p.value) for p in reply.parameter_list] == [
        (XsdType.BOOLEAN, False),
        (XsdType.UNSIGNED_INT, 86400),
        (XsdType.STRING, "http://127.0.0.5:7547/"),
    ]


def test_get_parameter_values_with_one_unknown_name_fails_whole():
    fault = make_phone().handle(m.GetParameterValues([ACS_URL, MS + "Nope"]))
    assert isinstance(fault, m.Fault) and fault.fault_code == 9005


def test_secrets_read_back_empty():
    phone = make_phone()
    assert spv(phone, pvs(MS + "Password", "s3cret")) == m.SetParameterValuesResponse(0)
    assert gpv(phone, MS + "Password") == {MS + "Password": ""}
    assert gpv(phone, ADMIN_PASSWORD) == {ADMIN_PASSWORD: ""}
    assert phone.value(MS + "Password") == "s3cret"
    assert phone.acs_credentials.password == "s3cret"


def test_up_time_counts_from_the_last_boot():
    phone = make_phone()
    phone.clock.now += 125
    assert gpv(phone, UP_TIME) == {UP_TIME: 125}
    phone.reboot()
    assert gpv(phone, UP_TIME) == {UP_TIME: 0}


# --- SetParameterValues -----------------------------------------------------------------------------------------------


def test_set_parameter_values_applies_and_sets_the_parameter_key():
    phone = make_phone()
    reply = spv(
        phone,
        pvs(PERIODIC_ENABLE, True, XsdType.BOOLEAN),
        pvs(PERIODIC_INTERVAL, 300, XsdType.UNSIGNED_INT),
        pvs(TRANSPORT_2, "TLS"),
        key="policy-1",
    )
    assert reply == m.SetParameterValuesResponse(0)
    assert gpv(phone, PERIODIC_ENABLE, PERIODIC_INTERVAL, TRANSPORT_2) == {
        PERIODIC_ENABLE: True,
        PERIODIC_INTERVAL: 300,
        TRANSPORT_2: "TLS",
    }
    assert phone.state.pvalues["P448"] == "2"
    assert phone.parameter_key == "policy-1"
    assert params_of(phone.start_session())[PARAMETER_KEY] == "policy-1"


@pytest.mark.parametrize(
    ("item", "code"),
    [
        (pvs(MS + "Nope", "x"), 9005),
        (pvs(MS, "x"), 9005),
        (pvs(PARAMETER_KEY, "x"), 9008),
        (pvs(SOFTWARE_VERSION, "9.9"), 9008),
        (pvs(PERIODIC_INTERVAL, "300"), 9006),
        (pvs(PERIODIC_INTERVAL, 0, XsdType.UNSIGNED_INT), 9007),
        (pvs(PERIODIC_INTERVAL, "soon", XsdType.UNSIGNED_INT), 9007),
        (pvs(TRANSPORT_2, "SCTP"), 9007),
        (pvs(ACS_URL, "http://localhost/"), 9007),
        (pvs(ADMIN_PASSWORD, "admin"), 9007),
    ],
)
def test_set_parameter_values_faults(item, code):
    phone = make_phone()
    before = phone.state.to_json()
    reply = spv(phone, pvs(PERIODIC_ENABLE, True, XsdType.BOOLEAN), item, key="never")
    assert spv_faults(reply) == {item.name: code}
    assert phone.state.to_json() == before
    assert phone.parameter_key == ""


def test_set_parameter_values_fault_strings_never_quote_a_secret():
    reply = spv(make_phone(), pvs(ADMIN_PASSWORD, "short!"))
    [fault] = reply.set_parameter_values_faults
    assert fault.fault_code == 9007 and "short!" not in fault.fault_string


def test_set_parameter_values_with_a_repeated_name_is_9003_without_details():
    phone = make_phone()
    reply = spv(phone, pvs(PERIODIC_ENABLE, True, XsdType.BOOLEAN), pvs(PERIODIC_ENABLE, False, XsdType.BOOLEAN))
    assert isinstance(reply, m.Fault) and reply.fault_code == 9003 and reply.set_parameter_values_faults == []
    assert gpv(phone, PERIODIC_ENABLE) == {PERIODIC_ENABLE: False}


def test_a_reboot_bound_change_reports_status_1_and_reads_back_the_configured_value():
    phone = make_phone()
    assert spv(phone, pvs(SYSLOG_SERVER, "syslog.example.net")) == m.SetParameterValuesResponse(1)
    assert gpv(phone, SYSLOG_SERVER) == {SYSLOG_SERVER: "syslog.example.net"}
    assert phone.state.pending_reboot == {"syslog.server": "log.ipvideotalk.com"}
    assert spv(phone, pvs(SYSLOG_SERVER, "log.ipvideotalk.com")) == m.SetParameterValuesResponse(0)
    assert phone.state.pending_reboot == {}
    spv(phone, pvs(SYSLOG_SERVER, "syslog.example.net"))
    phone.reboot()
    assert phone.state.pending_reboot == {}
    assert spv(phone, pvs(SYSLOG_SERVER, "syslog.example.net")) == m.SetParameterValuesResponse(0)


def test_a_writable_constant_accepts_a_valid_write_and_keeps_its_value():
    phone = make_phone()
    rtp_max = PROFILES + "1.RTP.LocalPortMax"
    assert spv(phone, pvs(rtp_max, 40000, XsdType.UNSIGNED_INT), key="k") == m.SetParameterValuesResponse(0)
    assert gpv(phone, rtp_max) == {rtp_max: 65535}
    assert phone.parameter_key == "k"


def test_parameters_sharing_a_pvalue_change_together_and_must_agree():
    phone = make_phone()
    spv(phone, pvs(RTP_MIN_1, 50000, XsdType.UNSIGNED_INT))
    assert gpv(phone, RTP_MIN_2) == {RTP_MIN_2: 50000}
    reply = spv(phone, pvs(RTP_MIN_1, 50100, XsdType.UNSIGNED_INT), pvs(RTP_MIN_2, 50200, XsdType.UNSIGNED_INT))
    assert spv_faults(reply) == {RTP_MIN_2: 9007}
    assert gpv(phone, RTP_MIN_1) == {RTP_MIN_1: 50000}


GOOD = [
    pvs(PERIODIC_ENABLE, True, XsdType.BOOLEAN),
    pvs(PERIODIC_INTERVAL, 600, XsdType.UNSIGNED_INT),
    pvs(TRANSPORT_2, "TCP"),
    pvs(SSH_DISABLED, True, XsdType.BOOLEAN),
    pvs(SYSLOG_SERVER, "syslog.example.net"),
    pvs(CR_PORT, 30000, XsdType.UNSIGNED_INT),
    pvs(MS + "ConnectionRequestUsername", "acsuser"),
]
BAD = [  # names distinct from GOOD's: a repeated name is a different fault
    (pvs(MS + "Missing", "x"), 9005),
    (pvs(PARAMETER_KEY, "k"), 9008),
    (pvs(MS + "UpgradesManaged", "true"), 9006),
    (pvs(MS + "STUNMinimumKeepAlivePeriod", 0, XsdType.UNSIGNED_INT), 9007),
    (pvs(MS + "ConnectionRequestPassword", "with space"), 9007),
    (pvs("Device.UserInterface.X_GRANDSTREAM_AccessMethod", "FTP"), 9007),
]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    good=st.lists(st.sampled_from(range(len(GOOD))), unique=True, max_size=len(GOOD)),
    bad=st.lists(st.sampled_from(range(len(BAD))), unique=True, max_size=len(BAD)),
    order=st.randoms(use_true_random=False),
)
def test_set_parameter_values_is_all_or_nothing(good, bad, order):
    phone = make_phone()
    items = [GOOD[i] for i in good] + [BAD[i][0] for i in bad]
    order.shuffle(items)
    before = phone.state.to_json()
    reply = spv(phone, *items, key="atomic")
    if bad:
        assert spv_faults(reply) == {BAD[i][0].name: BAD[i][1] for i in bad}
        assert phone.state.to_json() == before
    else:
        assert isinstance(reply, m.SetParameterValuesResponse)
        assert gpv(phone, *(item.name for item in items)) == {item.name: item.value for item in items}
        assert phone.parameter_key == "atomic"
        assert reply.status == (1 if any(item.name == SYSLOG_SERVER for item in items) else 0)


# --- Get/SetParameterAttributes -------------------------------------------------------------------------------------


def attributes(phone: Phone, *names: str) -> dict[str, int]:
    reply = phone.handle(m.GetParameterAttributes(list(names)))
    assert isinstance(reply, m.GetParameterAttributesResponse), reply
    return {a.name: a.notification for a in reply.parameter_list}


def test_parameter_attributes_default_from_the_model_and_follow_set():
    phone = make_phone()
    assert attributes(phone, SOFTWARE_VERSION, SSH_DISABLED) == {SOFTWARE_VERSION: 2, SSH_DISABLED: 0}
    assert set_notification(phone, SSH_DISABLED, 1) == m.SetParameterAttributesResponse()
    assert attributes(phone, SSH_DISABLED) == {SSH_DISABLED: 1}
    below = attributes(phone, "Device.UserInterface.")
    assert below[SSH_DISABLED] == 1 and set(below.values()) == {0, 1}
    reply = phone.handle(m.GetParameterAttributes([SSH_DISABLED]))
    assert reply.parameter_list[0].access_list == []


def test_set_parameter_attributes_on_a_partial_path_applies_below_and_skips_forced_parameters():
    phone = make_phone()
    assert set_notification(phone, "Device.DeviceInfo.", 1) == m.SetParameterAttributesResponse()
    after = attributes(phone, "Device.DeviceInfo.")
    assert after[SOFTWARE_VERSION] == 2  # forceEnabled
    assert after[UP_TIME] == 1 and after["Device.DeviceInfo.SerialNumber"] == 1
    assert set_notification(phone, "Device.DeviceInfo.", 2) == m.SetParameterAttributesResponse()
    assert attributes(phone, UP_TIME) == {UP_TIME: 1}  # canDeny: active refused, passive kept


@pytest.mark.parametrize(("name", "level"), [(SOFTWARE_VERSION, 0), (SOFTWARE_VERSION, 1), (UP_TIME, 2)])
def test_set_parameter_attributes_refuses_what_the_model_forbids_with_9009(name, level):
    phone = make_phone()
    request = m.SetParameterAttributes(
        [m.SetParameterAttributesStruct(SSH_DISABLED, True, 2), m.SetParameterAttributesStruct(name, True, level)]
    )
    reply = phone.handle(request)
    assert isinstance(reply, m.Fault) and reply.fault_code == 9009
    assert attributes(phone, SSH_DISABLED) == {SSH_DISABLED: 0}  # atomic


def test_set_parameter_attributes_other_faults_and_ignored_fields():
    phone = make_phone()
    unknown = phone.handle(m.SetParameterAttributes([m.SetParameterAttributesStruct(MS + "Nope", True, 1)]))
    assert isinstance(unknown, m.Fault) and unknown.fault_code == 9005
    invalid = phone.handle(m.SetParameterAttributes([m.SetParameterAttributesStruct(SSH_DISABLED, True, 3)]))
    assert isinstance(invalid, m.Fault) and invalid.fault_code == 9003
    unchanged = m.SetParameterAttributesStruct(SSH_DISABLED, False, 2, True, ["Subscriber"])
    assert phone.handle(m.SetParameterAttributes([unchanged])) == m.SetParameterAttributesResponse()
    assert attributes(phone, SSH_DISABLED) == {SSH_DISABLED: 0}
    assert attributes(phone, "") == attributes(phone, "Device.")


# --- AddObject / DeleteObject ---------------------------------------------------------------------------------------


def test_delete_and_add_a_table_instance():
    phone = make_phone()
    spv(phone, pvs(TRANSPORT_2, "TLS"))
    assert phone.handle(m.DeleteObject(PROFILES + "2.", "del-1")) == m.DeleteObjectResponse(0)
    assert phone.parameter_key == "del-1"
    assert gpv(phone, PROFILE_COUNT) == {PROFILE_COUNT: 1}
    assert PROFILES + "2." not in names(phone.handle(m.GetParameterNames(PROFILES, True)))
    gone = phone.handle(m.GetParameterValues([TRANSPORT_2]))
    assert isinstance(gone, m.Fault) and gone.fault_code == 9005
    again = phone.handle(m.DeleteObject(PROFILES + "2.", "del-2"))
    assert isinstance(again, m.Fault) and again.fault_code == 9005
    assert phone.handle(m.AddObject(PROFILES, "add-1")) == m.AddObjectResponse(2, 0)
    assert phone.parameter_key == "add-1"
    assert gpv(phone, TRANSPORT_2, PROFILE_COUNT) == {TRANSPORT_2: "UDP", PROFILE_COUNT: 2}
    full = phone.handle(m.AddObject(PROFILES, "add-2"))
    assert isinstance(full, m.Fault) and full.fault_code == 9004
    assert phone.parameter_key == "add-1"


def test_deleting_an_instance_hides_its_sub_tables():
    phone = make_phone()
    phone.handle(m.DeleteObject(PROFILES + "1.", ""))
    line = PROFILES + "1.Line.1.DirectoryNumber"
    assert isinstance(phone.handle(m.GetParameterValues([line])), m.Fault)
    assert phone.handle(m.AddObject(PROFILES, "")) == m.AddObjectResponse(1, 0)
    assert gpv(phone, line) == {line: ""}


@pytest.mark.parametrize(
    "request_",
    [
        m.AddObject("Device.Services.VoiceService.", "k"),  # a read-only table
        m.AddObject(MS, "k"),  # not a table
        m.AddObject(PROFILES + "1.", "k"),  # an instance, not a table
        m.DeleteObject(PROFILES, "k"),  # the table itself
        m.DeleteObject("Device.Services.VoiceService.1.", "k"),  # read-only table
        m.DeleteObject(PROFILES + "7.", "k"),  # no such instance
        m.DeleteObject(MS, "k"),
    ],
)
def test_add_and_delete_object_elsewhere_are_9005(request_):
    phone = make_phone()
    reply = phone.handle(request_)
    assert isinstance(reply, m.Fault) and reply.fault_code == 9005
    assert phone.parameter_key == ""


# --- Other RPCs -------------------------------------------------------------------------------------------------------


def test_get_rpc_methods_lists_what_the_phone_answers_in_its_namespace():
    methods = make_phone().handle(m.GetRPCMethods()).method_list
    assert {"GetParameterValues", "SetParameterValues", "Download", "Upload", "CancelTransfer"} <= set(methods)
    assert "ChangeDUState" not in methods and "ScheduleDownload" not in methods
    old = make_phone(quirks=Quirks(cwmp_version="1.0")).handle(m.GetRPCMethods()).method_list
    assert "GetAllQueuedTransfers" not in old and "CancelTransfer" not in old and "Reboot" in old


@pytest.mark.parametrize(
    "request_",
    [
        m.ChangeDUState([m.InstallOpStruct("http://x.example/du")]),
        m.ScheduleDownload("k", "1 Firmware Upgrade Image", "http://x.example/fw"),
        m.Inform(m.DeviceId("a", "b", "c", "d")),
        m.GetParameterValuesResponse(),
    ],
)
def test_everything_else_is_9000(request_):
    reply = make_phone().handle(request_)
    assert isinstance(reply, m.Fault) and reply.fault_code == 9000


def test_methods_outside_the_phones_namespace_are_9000():
    reply = make_phone(quirks=Quirks(cwmp_version="1.0")).handle(m.CancelTransfer("k"))
    assert isinstance(reply, m.Fault) and reply.fault_code == 9000


def test_factory_reset_restores_defaults_and_site_defaults_and_bootstraps():
    site = {"acs.url": "https://acs.example.net/cwmp", "acs.username": "site"}
    phone = make_phone(**site)
    spv(phone, pvs(ACS_URL, "https://other.example.net/"), pvs(SSH_DISABLED, True, XsdType.BOOLEAN), key="k")
    set_notification(phone, SSH_DISABLED, 2)
    phone.handle(m.Download("d", "3 Vendor Configuration File", CONFIG_URL))
    assert phone.handle(m.FactoryReset()) == m.FactoryResetResponse()
    actions = phone.take_actions()
    assert actions[-1] == FactoryResetAction()
    phone.factory_reset()
    assert phone.acs_url == "https://acs.example.net/cwmp" and phone.acs_credentials.username == "site"
    assert gpv(phone, SSH_DISABLED, PARAMETER_KEY) == {SSH_DISABLED: False, PARAMETER_KEY: ""}
    assert attributes(phone, SSH_DISABLED) == {SSH_DISABLED: 0}
    assert phone.state.serial == SERIAL and phone.state.transfers == []
    assert phone.take_actions() == []
    assert events_of(phone.start_session()) == [("0 BOOTSTRAP", ""), ("1 BOOT", "")]


# --- Transfers --------------------------------------------------------------------------------------------------------


def download(phone: Phone, data: bytes, key: str = "cfg-1", file_type: str = "3 Vendor Configuration File"):
    reply = phone.handle(m.Download(key, file_type, CONFIG_URL, "u", "p"))
    assert isinstance(reply, m.DownloadResponse) and reply.status == 1, reply
    [action] = [a for a in phone.take_actions() if isinstance(a, DownloadAction)]
    assert phone.begin_transfer(action.transfer_id)
    return phone.complete_download(action.transfer_id, data)


def config(pvalues: dict[str, str], mac: str | None = None) -> bytes:
    return gsconfig.build_config(pvalues, mac=mac)


def test_download_queues_an_action_and_reports_transfer_complete_until_acknowledged():
    phone = make_phone()
    request = m.Download("cfg-7", "3 Vendor Configuration File", CONFIG_URL, "user", "pw", 99, "cfg.xml", 5)
    assert phone.handle(request) == m.DownloadResponse(1)
    [action] = phone.take_actions()
    assert action == DownloadAction(action.transfer_id, "cfg-7", request.file_type, CONFIG_URL, "user", "pw", 99,
                                    "cfg.xml", 5)
    assert "pw" not in repr(action)
    queued = phone.handle(m.GetQueuedTransfers())
    assert queued == m.GetQueuedTransfersResponse([m.QueuedTransferStruct("cfg-7", 1)])
    assert phone.begin_transfer(action.transfer_id)
    everything = phone.handle(m.GetAllQueuedTransfers())
    assert everything.transfer_list == [
        m.AllQueuedTransferStruct("cfg-7", 2, True, "3 Vendor Configuration File", 99, "cfg.xml")
    ]
    start = datetime(2027, 1, 1, tzinfo=timezone.utc)
    fault = phone.complete_download(action.transfer_id, config({"P276": "1"}), start=start, end=start)
    assert fault == m.FaultStruct(0, "")
    assert phone.handle(m.GetQueuedTransfers()).transfer_list == []
    assert phone.session_wanted()
    inform = phone.start_session()
    assert events_of(inform) == [("7 TRANSFER COMPLETE", ""), ("M Download", "cfg-7")]
    phone.inform_delivered()
    [transfer_complete] = phone.pending_cpe_requests()
    assert transfer_complete == m.TransferComplete("cfg-7", m.FaultStruct(0, ""), start, start)
    phone.session_ended(succeeded=False)  # TransferCompleteResponse never came
    assert events_of(phone.start_session()) == [("7 TRANSFER COMPLETE", ""), ("M Download", "cfg-7")]
    phone.inform_delivered()
    phone.cpe_request_acknowledged(transfer_complete)
    assert phone.pending_cpe_requests() == []
    with pytest.raises(PhoneError):
        phone.cpe_request_acknowledged(transfer_complete)
    phone.session_ended(succeeded=True)
    assert events_of(phone.start_session(["2 PERIODIC"])) == [("2 PERIODIC", "")]


def test_a_failed_transfer_reports_its_fault():
    phone = make_phone()
    phone.handle(m.Download("cfg-1", "3 Vendor Configuration File", CONFIG_URL))
    [action] = phone.take_actions()
    phone.begin_transfer(action.transfer_id)
    assert phone.complete_download(action.transfer_id, None, (9015, "no route")) == m.FaultStruct(9015, "no route")
    assert phone.pending_cpe_requests()[0].fault_struct == m.FaultStruct(9015, "no route")
    with pytest.raises(PhoneError):
        phone.complete_download(action.transfer_id, b"", None)


@pytest.mark.parametrize(
    ("request_", "code"),
    [
        (m.Download("k", "2 Web Content", CONFIG_URL), 9003),
        (m.Download("k", "X 000B82 Ringtone", CONFIG_URL), 9003),
        (m.Download("k", "3 Vendor Configuration File", "ftp://files.example.net/cfg.xml"), 9013),
        (m.Download("k", "3 Vendor Configuration File", "https:///cfg.xml"), 9003),
        (m.Upload("k", "2 Vendor Log File", CONFIG_URL), 9003),
        (m.Upload("k", "1 Vendor Configuration File", "tftp://files.example.net/"), 9013),
    ],
)
def test_transfer_requests_the_phone_cannot_do(request_, code):
    phone = make_phone()
    reply = phone.handle(request_)
    assert isinstance(reply, m.Fault) and reply.fault_code == code
    assert phone.take_actions() == [] and phone.state.transfers == []


def test_the_transfer_queue_is_bounded_including_unacknowledged_results():
    phone = make_phone()
    for i in range(16):
        assert phone.handle(m.Download(f"k{i}", "3 Vendor Configuration File", CONFIG_URL)) == m.DownloadResponse(1)
    reply = phone.handle(m.Download("k16", "3 Vendor Configuration File", CONFIG_URL))
    assert isinstance(reply, m.Fault) and reply.fault_code == 9004
    for action in phone.take_actions():
        phone.begin_transfer(action.transfer_id)
        phone.complete_download(action.transfer_id, None, (9016, "gone"))
    reply = phone.handle(m.Upload("u", "1 Vendor Configuration File", CONFIG_URL))
    assert isinstance(reply, m.Fault) and reply.fault_code == 9004
    assert len(phone.start_session().event) == 17
    phone.inform_delivered()
    phone.cpe_request_acknowledged(phone.pending_cpe_requests()[0])
    assert phone.handle(m.Upload("u", "1 Vendor Configuration File", CONFIG_URL)) == m.UploadResponse(1)


def test_cancel_transfer():
    phone = make_phone()
    phone.handle(m.Download("a", "3 Vendor Configuration File", CONFIG_URL))
    phone.handle(m.Download("b", "3 Vendor Configuration File", CONFIG_URL))
    first, second = phone.take_actions()
    assert phone.handle(m.CancelTransfer("a")) == m.CancelTransferResponse()
    assert not phone.begin_transfer(first.transfer_id)
    assert phone.begin_transfer(second.transfer_id)
    busy = phone.handle(m.CancelTransfer("b"))
    assert isinstance(busy, m.Fault) and busy.fault_code == 9021
    unknown = phone.handle(m.CancelTransfer("zzz"))
    assert isinstance(unknown, m.Fault) and unknown.fault_code == 9003


def test_a_reboot_offers_unfinished_transfers_again():
    phone = make_phone()
    phone.handle(m.Download("a", "3 Vendor Configuration File", CONFIG_URL))
    [action] = phone.take_actions()
    phone.begin_transfer(action.transfer_id)
    phone.reboot()
    assert phone.take_actions() == [action]
    assert phone.handle(m.GetQueuedTransfers()).transfer_list == [m.QueuedTransferStruct("a", 1)]


def test_upload_of_the_configuration():
    phone = make_phone()
    assert phone.handle(m.Upload("up-1", "1 Vendor Configuration File", CONFIG_URL, "u", "p")) == m.UploadResponse(1)
    [action] = phone.take_actions()
    assert isinstance(action, UploadAction) and action.command_key == "up-1"
    assert phone.begin_transfer(action.transfer_id)
    parsed = gsconfig.parse_config(phone.export_config())
    assert parsed.mac == SERIAL and parsed.pvalues == phone.state.pvalues
    assert phone.complete_upload(action.transfer_id) == m.FaultStruct(0, "")
    assert events_of(phone.start_session()) == [("7 TRANSFER COMPLETE", ""), ("M Upload", "up-1")]


def test_the_exported_configuration_is_encrypted_with_the_xml_config_password():
    phone = make_phone()
    phone.local_change("config.xml_password", "Xml-Pass1")
    blob = phone.export_config()
    assert gsconfig.is_encrypted(blob)
    assert gsconfig.parse_config(gsconfig.decrypt_config(blob, "Xml-Pass1")).pvalues == phone.state.pvalues


# --- Vendor configuration files ---------------------------------------------------------------------------------------


def test_a_configuration_file_is_applied_and_ignores_unknown_pvalues():
    phone = make_phone()
    fault = download(phone, config({"P276": "1", "P448": "2", "P99999": "whatever", "P1": "admin", "P4509": "k"}))
    assert fault == m.FaultStruct(0, "")
    assert gpv(phone, SSH_DISABLED, TRANSPORT_2) == {SSH_DISABLED: True, TRANSPORT_2: "TLS"}
    assert "P99999" not in phone.state.pvalues and "P1" not in phone.state.pvalues
    assert phone.parameter_key == ""


def test_a_configuration_file_change_notifies():
    phone = make_phone()
    set_notification(phone, SSH_DISABLED, 2)
    download(phone, config({"P276": "1"}))
    inform = phone.start_session()
    assert events_of(inform) == [("4 VALUE CHANGE", ""), ("7 TRANSFER COMPLETE", ""), ("M Download", "cfg-1")]
    assert params_of(inform)[SSH_DISABLED] is True


def test_reboot_bound_values_from_a_configuration_file_wait_for_a_reboot():
    phone = make_phone()
    assert phone.cwmp_enabled
    download(phone, config({"P1409": "0"}))
    assert phone.value("tr069.enabled") is False and phone.cwmp_enabled
    phone.reboot()
    assert not phone.cwmp_enabled


@pytest.mark.parametrize(
    ("pvalues", "mac"),
    [
        ({"P276": "1", "P130": "9"}, None),  # not a transport
        ({"P276": "1", "P4518": "80"}, None),  # connection request port outside 1025-65535
        ({"P276": "1", "P2": "abc"}, None),  # admin password too short
        ({"P276": "1"}, "c074ad000001"),  # another phone's file
    ],
)
def test_a_configuration_file_with_an_invalid_value_is_rejected_whole(pvalues, mac):
    phone = make_phone()
    before = dict(phone.state.pvalues)
    fault = download(phone, config(pvalues, mac))
    assert fault.fault_code == 9018
    assert phone.state.pvalues == before
    assert phone.pending_cpe_requests()[0].fault_struct.fault_code == 9018


def test_garbage_is_not_a_configuration_file():
    phone = make_phone()
    assert download(phone, b"<html>nope</html>").fault_code == 9018
    assert download(phone, b"\x00\x01\x02").fault_code == 9018


def test_a_configuration_file_addressed_to_this_phone_is_applied():
    phone = make_phone()
    assert download(phone, config({"P276": "1"}, mac=SERIAL.upper())).fault_code == 0


def test_encrypted_configuration_files():
    phone = make_phone()
    plain = config({"P276": "1"})
    assert download(phone, gsconfig.encrypt_config(plain, "Xml-Pass1")).fault_code == 9018  # no password set
    phone.local_change("P1359", "Xml-Pass1")
    assert download(phone, gsconfig.encrypt_config(plain, "wrong-pass")).fault_code == 9018
    assert phone.value("ssh.disabled") is False
    assert download(phone, gsconfig.encrypt_config(plain, "Xml-Pass1")).fault_code == 0
    assert phone.value("ssh.disabled") is True
    assert download(phone, config({"P276": "0"})).fault_code == 0  # plaintext is still accepted
    assert phone.value("ssh.disabled") is False


def test_the_key_derivation_is_a_quirk_of_the_phone():
    phone = make_phone(quirks=Quirks(config_kdf="sha256"), **{"config.xml_password": "Xml-Pass1"})
    plain = config({"P276": "1"})
    assert download(phone, gsconfig.encrypt_config(plain, "Xml-Pass1", kdf="md5")).fault_code == 9018
    assert download(phone, gsconfig.encrypt_config(plain, "Xml-Pass1", kdf="sha256")).fault_code == 0


def test_authenticated_configuration_files_need_p1_equal_to_the_admin_password():
    phone = make_phone(**{"config.authenticate": True, "web.admin_password": "Adm1nPass"})
    assert download(phone, config({"P276": "1"})).fault_code == 9019
    assert download(phone, config({"P276": "1", "P1": "admin"})).fault_code == 9019
    assert phone.value("ssh.disabled") is False
    assert download(phone, config({"P276": "1", "P1": "Adm1nPass"})).fault_code == 0
    assert phone.value("ssh.disabled") is True


def test_an_exported_configuration_restores_even_with_the_factory_admin_password():
    phone = make_phone()
    backup = phone.export_config()
    phone.local_change("ssh.disabled", True)
    phone.local_change("web.admin_password", "Adm1nPass")
    assert download(phone, backup).fault_code == 0
    assert phone.value("ssh.disabled") is False and phone.value("web.admin_password") == "admin"


def test_a_simulated_firmware_upgrade():
    phone = make_phone()
    fault = download(phone, firmware_image("WP820", "1.0.3.7"), key="fw-1", file_type="1 Firmware Upgrade Image")
    assert fault == m.FaultStruct(0, "")
    assert phone.take_actions() == [RebootAction("firmware upgrade")]
    assert gpv(phone, SOFTWARE_VERSION) == {SOFTWARE_VERSION: MODEL.software_version}
    phone.reboot()
    inform = phone.start_session()
    assert events_of(inform) == [
        ("1 BOOT", ""),
        ("4 VALUE CHANGE", ""),
        ("7 TRANSFER COMPLETE", ""),
        ("M Download", "fw-1"),
    ]
    assert params_of(inform)[SOFTWARE_VERSION] == "1.0.3.7"


@pytest.mark.parametrize(
    ("image", "code"), [(b"\x7fELF random bytes", 9019), (firmware_image("GXP2170", "1.0.11.1"), 9018)]
)
def test_firmware_the_phone_refuses(image, code):
    phone = make_phone()
    assert download(phone, image, file_type="1 Firmware Upgrade Image").fault_code == code
    assert not any(isinstance(a, RebootAction) for a in phone.take_actions())
    phone.reboot()
    assert phone.state.software_version == MODEL.software_version


def test_firmware_image_refuses_unprintable_names():
    with pytest.raises(PhoneError):
        firmware_image("WP 820", "1")


# --- The keypad hook and the facts the network layer reads ------------------------------------------------------------


def test_local_change_by_key_path_and_pvalue():
    phone = make_phone()
    phone.local_change("sip.2.transport", "TLS")
    assert gpv(phone, TRANSPORT_2) == {TRANSPORT_2: "TLS"}
    phone.local_change(TRANSPORT_2, "TCP")
    assert phone.state.pvalues["P448"] == "1"
    phone.local_change("P448", "0")
    assert gpv(phone, TRANSPORT_2) == {TRANSPORT_2: "UDP"}
    phone.local_change("P39", "50100")  # one P-value behind two parameters
    assert gpv(phone, RTP_MIN_1, RTP_MIN_2) == {RTP_MIN_1: 50100, RTP_MIN_2: 50100}
    phone.local_change("keypad.menu_access", "ConstraintMode")  # no TR-069 path, still a setting
    assert phone.state.pvalues["P1357"] == "2"


@pytest.mark.parametrize(
    ("target", "value", "error"),
    [
        ("nothing.here", "1", PhoneError),
        ("P424242", "1", PhoneError),
        ("device.model_name", "WP999", PhoneError),  # a constant, not a setting
        ("acs.parameter_key", "k", PhoneError),  # the ACS's, not the keypad's
        ("sip.1.transport", "SCTP", InvalidValue),
        ("acs.periodic_inform_interval", "often", InvalidValue),
        ("P448", "7", InvalidValue),
    ],
)
def test_local_change_refuses_what_the_phone_cannot_hold(target, value, error):
    phone = make_phone()
    before = phone.state.to_json()
    with pytest.raises(error):
        phone.local_change(target, value)
    assert phone.state.to_json() == before


def test_connection_request_facts_follow_the_settings():
    phone = make_phone()
    assert phone.connection_request_port == 7547
    assert phone.connection_request_url == "http://127.0.0.5:7547/"
    spv(phone, pvs(CR_PORT, 30005, XsdType.UNSIGNED_INT), pvs(MS + "ConnectionRequestUsername", "acs"),
        pvs(MS + "ConnectionRequestPassword", "Secret99"))
    assert phone.connection_request_port == 30005
    assert gpv(phone, CR_URL) == {CR_URL: "http://127.0.0.5:30005/"}
    assert tuple(phone.connection_request_credentials) == ("acs", "Secret99")
    assert "Secret99" not in repr(phone.connection_request_credentials)
    assert make_phone(ip="::1").connection_request_url == "http://[::1]:7547/"


def test_reboot_bound_facts_keep_their_running_value_until_the_reboot():
    text = (
        '[device]\nname = "tiny"\ntitle = "t"\nmanufacturer = "M"\noui = "ABCDEF"\noui_aliases = []\n'
        'product_class = "T1"\nsoftware_version = "1"\n'
        '[[parameter]]\nkey = "acs.connection_request_port"\ntitle = "p"\n'
        'path = "Device.ManagementServer.ConnectionRequestPort"\ntype = "unsignedInt"\npvalue = "P9"\n'
        "default = 7547\nreboot = true\n"
    )
    model = parse_model(text)
    phone = Phone(model, PhoneState.factory(model, serial="t1", mac="abcdef000001"), clock=Clock(), ip="127.0.0.9")
    phone.reboot()
    port = "Device.ManagementServer.ConnectionRequestPort"
    assert spv(phone, pvs(port, 9999, XsdType.UNSIGNED_INT)) == m.SetParameterValuesResponse(1)
    assert gpv(phone, port) == {port: 9999}
    assert phone.connection_request_port == 7547
    phone.reboot()
    assert phone.connection_request_port == 9999
    assert phone.stun.enabled is False and phone.parameter_key == ""  # features this model lacks


def test_periodic_inform_schedule():
    phone = make_phone()
    assert phone.periodic_inform == (False, 86400, None)
    assert phone.next_periodic_inform(T0) is None
    spv(phone, pvs(PERIODIC_ENABLE, True, XsdType.BOOLEAN), pvs(PERIODIC_INTERVAL, 3600, XsdType.UNSIGNED_INT))
    assert phone.next_periodic_inform(T0) == 3600  # phase: the boot
    assert phone.next_periodic_inform(T0 + 600) == 3000
    phase = datetime.fromtimestamp(T0 + 100, timezone.utc)
    spv(phone, pvs(PERIODIC_TIME, phase, XsdType.DATETIME))
    assert phone.periodic_inform == (True, 3600, T0 + 100)
    assert phone.next_periodic_inform(T0) == 100
    assert phone.next_periodic_inform(T0 + 100) == 3600
    assert phone.next_periodic_inform(T0 + 7299) == 1


def test_stun_settings_are_read_from_the_model():
    phone = make_phone()
    spv(phone, pvs(MS + "STUNEnable", True, XsdType.BOOLEAN), pvs(MS + "STUNServerAddress", "stun.example.net"),
        pvs(MS + "STUNServerPort", 3479, XsdType.UNSIGNED_INT), pvs(MS + "STUNPassword", "StunPass1"))
    stun = phone.stun
    assert (stun.enabled, stun.server_address, stun.server_port, stun.password) == (
        True, "stun.example.net", 3479, "StunPass1")
    assert (stun.maximum_keepalive, stun.minimum_keepalive) == (60, 30)
    assert "StunPass1" not in repr(stun)
