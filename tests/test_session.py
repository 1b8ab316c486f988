"""The CWMP session machine, driven with no sockets (acs.session is pure)."""

from __future__ import annotations

import pytest

from acs import session as s
from cwmp_models import messages as m
from cwmp_models.envelope import NS_CWMP_1_0, NS_CWMP_1_2, Envelope
from tests.cwmp_samples import DEVICE


def inform_envelope(**headers) -> Envelope:
    return Envelope(m.Inform(DEVICE, [m.EventStruct("2 PERIODIC")]), id="cpe-1", **headers)


def opened(**headers) -> s.CwmpSession:
    session = s.CwmpSession()
    event = session.receive(inform_envelope(**headers), now=0)
    assert isinstance(event, s.InformReceived)
    session.accept_inform()
    return session


def test_full_session_flow():
    session = s.CwmpSession()
    event = session.receive(inform_envelope(), now=1)
    assert isinstance(event, s.InformReceived) and event.inform.device_id == DEVICE
    response = session.accept_inform()
    assert response.body == m.InformResponse(1) and response.id == "cpe-1"
    assert session.state is s.State.CPE_TURN

    event = session.receive(Envelope(m.TransferComplete("cfg-1"), id="cpe-2"), now=2)
    assert isinstance(event, s.CpeRequestReceived)
    answer = session.answer(m.TransferCompleteResponse())
    assert answer.id == "cpe-2" and isinstance(answer.body, m.TransferCompleteResponse)

    assert isinstance(session.receive(None, now=3), s.AcsTurn)
    request = session.send(m.GetParameterValues(["Device.DeviceInfo."]))
    assert request.id and isinstance(request.body, m.GetParameterValues)
    event = session.receive(Envelope(m.GetParameterValuesResponse([]), id=request.id), now=4)
    assert isinstance(event, s.ReplyReceived) and isinstance(event.request, m.GetParameterValues)

    second = session.send(m.Reboot("r"))
    assert second.id != request.id
    event = session.receive(Envelope(m.Fault.of(9001), id=second.id), now=5)
    assert isinstance(event, s.ReplyReceived) and isinstance(event.reply, m.Fault)
    session.finish()
    assert session.finished and session.outcome == "ok" and session.rpc_count == 2


def test_an_envelope_with_an_empty_body_counts_as_the_empty_post():
    session = opened()
    assert isinstance(session.receive(Envelope(None), now=1), s.AcsTurn)


def test_session_must_open_with_an_inform():
    session = s.CwmpSession()
    event = session.receive(Envelope(m.TransferComplete("x"), id="1"), now=0)
    assert isinstance(event, s.ProtocolViolation) and event.fatal
    assert isinstance(event.response.body, m.Fault) and event.response.body.fault_code == 8003
    assert session.finished and session.outcome == "protocol-error"


def test_empty_post_before_inform_is_a_violation():
    event = s.CwmpSession().receive(None, now=0)
    assert isinstance(event, s.ProtocolViolation) and "must open with an Inform" in event.reason


def test_unsupported_cpe_request_gets_fault_8000_and_the_session_goes_on():
    session = opened()
    event = session.receive(Envelope(m.GetParameterValues(["Device."]), id="x"), now=1)
    assert isinstance(event, s.ProtocolViolation) and not event.fatal
    assert event.response.body.fault_code == 8000 and event.response.id == "x"
    assert isinstance(session.receive(None, now=2), s.AcsTurn)


def test_reply_with_wrong_id_is_recorded_and_ends_the_session():
    session = opened()
    session.receive(None, now=1)
    session.send(m.GetRPCMethods())
    event = session.receive(Envelope(m.GetRPCMethodsResponse([]), id="bogus"), now=2)
    assert isinstance(event, s.ProtocolViolation) and event.fatal and "does not match" in event.reason
    assert session.violations == [event.reason] and session.finished


def test_reply_of_the_wrong_kind_is_a_violation():
    session = opened()
    session.receive(None, now=1)
    request = session.send(m.GetRPCMethods())
    event = session.receive(Envelope(m.SetParameterValuesResponse(0), id=request.id), now=2)
    assert isinstance(event, s.ProtocolViolation) and "does not answer GetRPCMethods" in event.reason


def test_reply_without_id_is_accepted():
    # Some stacks omit cwmp:ID in responses; the pairing is still unambiguous (one request outstanding).
    session = opened()
    session.receive(None, now=1)
    session.send(m.GetRPCMethods())
    assert isinstance(session.receive(Envelope(m.GetRPCMethodsResponse(["Inform"])), now=2), s.ReplyReceived)


def test_empty_post_instead_of_reply_ends_the_session():
    session = opened()
    session.receive(None, now=1)
    session.send(m.GetRPCMethods())
    event = session.receive(None, now=2)
    assert isinstance(event, s.ProtocolViolation) and "instead of a reply" in event.reason and session.finished


def test_a_reply_to_nothing_is_a_violation():
    session = opened()
    event = session.receive(Envelope(m.GetParameterValuesResponse([]), id="9"), now=1)
    assert isinstance(event, s.ProtocolViolation) and event.fatal


def test_new_inform_mid_session_restarts():
    session = opened()
    session.receive(None, now=1)
    session.send(m.GetRPCMethods())
    event = session.receive(inform_envelope(), now=2)
    assert isinstance(event, s.InformRestartsSession)
    assert session.finished and session.outcome == "superseded"


def test_hold_requests_refuses_cpe_requests_until_released():
    session = s.CwmpSession()
    session.receive(inform_envelope(), now=0)
    response = session.accept_inform(hold_requests=True)
    assert response.hold_requests is True
    event = session.receive(Envelope(m.TransferComplete("k"), id="2"), now=1)
    assert isinstance(event, s.ProtocolViolation) and not event.fatal
    assert event.response.body.fault_code == 8001
    assert isinstance(session.receive(None, now=2), s.AcsTurn)
    request = session.send(m.GetRPCMethods())
    assert request.hold_requests is True
    session.receive(Envelope(m.GetRPCMethodsResponse([]), id=request.id), now=3)
    assert session.send(m.GetRPCMethods(), hold_requests=False).hold_requests is None


def test_rpc_cap_ends_the_session_without_sending():
    session = s.CwmpSession(max_rpcs=2)
    session.receive(inform_envelope(), now=0)
    session.accept_inform()
    session.receive(None, now=1)
    for _ in range(2):
        request = session.send(m.GetRPCMethods())
        session.receive(Envelope(m.GetRPCMethodsResponse([]), id=request.id), now=2)
    assert session.send(m.GetRPCMethods()) is None
    assert session.finished and session.outcome == "rpc-cap" and session.rpc_count == 2


def test_version_negotiation_uses_the_highest_common_version():
    session = s.CwmpSession()
    session.receive(inform_envelope(supported_cwmp_versions="1.0,1.2,1.4"), now=0)
    assert session.accept_inform().use_cwmp_version == "1.4"


def test_no_common_version_rejects_with_8006():
    session = s.CwmpSession()
    session.receive(inform_envelope(supported_cwmp_versions="2.0"), now=0)
    response = session.accept_inform()
    assert response.body.fault_code == 8006 and session.finished


def test_answers_use_the_device_namespace():
    session = s.CwmpSession()
    session.receive(Envelope(m.Inform(DEVICE), id="1", namespace=NS_CWMP_1_0), now=0)
    assert session.accept_inform().namespace == NS_CWMP_1_0
    session.receive(None, now=1)
    assert session.send(m.GetRPCMethods()).namespace == NS_CWMP_1_0


def test_session_timeout_from_the_device_header():
    session = s.CwmpSession()
    session.receive(inform_envelope(session_timeout=90), now=100)
    assert session.timeout == 90
    assert not session.is_expired(150) and session.is_expired(191)
    session.expire()
    assert session.outcome == "timeout"


def test_default_timeout_is_30_seconds():
    session = opened()
    assert session.timeout == 30 and session.is_expired(31) and not session.is_expired(29)


@pytest.mark.parametrize(
    "call",
    [
        lambda sess: sess.answer(m.TransferCompleteResponse()),
        lambda sess: sess.send(m.GetRPCMethods()),
        lambda sess: sess.accept_inform(),
    ],
)
def test_driver_calls_in_the_wrong_state_raise(call):
    session = opened()  # CPE_TURN: none of these is allowed
    with pytest.raises(s.LocalProtocolError):
        call(session)


def test_sending_a_response_as_a_request_is_a_driver_error():
    session = opened()
    session.receive(None, now=1)
    with pytest.raises(s.LocalProtocolError):
        session.send(m.InformResponse(1))


def test_request_ids_are_unique_across_sessions():
    ids = set()
    for _ in range(50):
        session = opened()
        session.receive(None, now=1)
        ids.add(session.send(m.GetRPCMethods()).id)
    assert len(ids) == 50


def test_reject_inform_ends_the_session():
    session = s.CwmpSession()
    session.receive(inform_envelope(), now=0)
    response = session.reject_inform(m.Fault.of(8005))
    assert response.body.fault_code == 8005 and session.outcome == "rejected"
    assert NS_CWMP_1_2 == response.namespace
