"""Drive the ACS's session handler and the simulator's pure Phone against each other in-process: the real protocol
machine, store, policy and file service on one side, the real phone behaviour on the other, no sockets. The socket
tests cover HTTP; these cover what the policy does with a phone, quickly and deterministically."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass, field

from acs.files import FileService
from acs.handler import SessionHandler
from acs.policy.rules import load_policy
from acs.policy.service import PolicyService
from acs.store import Store
from acs.tasks import TaskQueueSource
from acs.vault import Vault
from cwmp_models import codec
from cwmp_models.datamodel import load_model
from cwmp_models.envelope import Envelope
from wp820_sim.phone import DownloadAction, Phone, RebootAction, UploadAction
from wp820_sim.state import PhoneState

ACS_URL = "https://acs.example.net:7549/cwmp"
MODEL = load_model()


@dataclass
class Rig:
    store: Store
    policy: PolicyService
    handler: SessionHandler
    files: FileService
    phone: Phone
    now: list[float]
    sessions: list[list[str]] = field(default_factory=list)

    @property
    def device_id(self) -> str:
        return f"{self.phone.state.oui}-{self.phone.state.product_class}-{self.phone.state.serial}"

    def session(self, events=("2 PERIODIC",)) -> list[str]:
        """One whole CWMP session over the real codec; returns the names of the ACS requests, in order."""
        self.now[0] += 60
        active = self.handler.new_session(remote_ip="127.0.0.9")
        answer = self._post(active, Envelope(self.phone.start_session(events), id="inform"))
        assert type(answer.body).__name__ == "InformResponse", answer
        self.phone.inform_delivered()
        for request in self.phone.pending_cpe_requests():
            self._post(active, Envelope(request, id="cpe"))
            self.phone.cpe_request_acknowledged(request)
        rpcs = []
        answer = self._post(active, None)
        while answer is not None:
            rpcs.append(answer.body.NAME)
            reply = self.phone.handle(answer.body)
            answer = self._post(active, Envelope(reply, id=answer.id))
        self.phone.session_ended(succeeded=True)
        self.sessions.append(rpcs)
        return rpcs

    def _post(self, active, envelope):
        # Through the codec both ways, as on the wire.
        parsed = codec.parse(codec.serialize(envelope)) if envelope is not None else None
        answer = self.handler.handle(active, parsed)
        return codec.parse(codec.serialize(answer)) if answer is not None else None

    def transfers(self) -> list[str]:
        """Perform what the phone queued after the session (file transfers, reboots); returns what it did."""
        done = []
        for action in self.phone.take_actions():
            if isinstance(action, DownloadAction):
                self.phone.begin_transfer(action.transfer_id)
                record = self.files.find(action.url.rsplit("/", 1)[1])
                data = self.files.serve(record, remote_ip="127.0.0.9")
                self.phone.complete_download(action.transfer_id, data)
                done.append("download")
            elif isinstance(action, UploadAction):
                self.phone.begin_transfer(action.transfer_id)
                record = self.files.find(action.url.rsplit("/", 1)[1])
                self.files.receive(record, self.phone.export_config(), remote_ip="127.0.0.9")
                self.phone.complete_upload(action.transfer_id)
                done.append("upload")
            elif isinstance(action, RebootAction):
                self.phone.reboot()
                done.append("reboot")
        return done


def build_rig(tmp_path, *, serial="c074ad000001", overrides=None, settings=None) -> Rig:
    now = [1_800_000_000.0]
    clock = lambda: now[0]  # noqa: E731
    store = Store(tmp_path / "acs.sqlite", clock=clock)
    vault = Vault(base64.b64decode(base64.b64encode(os.urandom(32))))
    files = FileService(store, base_url="https://acs.example.net:7549/files", seal=vault.seal, open=vault.open,
                        clock=clock)
    policy = PolicyService(store, load_policy(), vault=vault, files=files, acs_url=ACS_URL, clock=clock,
                           overrides=overrides)
    handler = SessionHandler(store, work=[TaskQueueSource, policy.source], clock=clock)
    state = PhoneState.factory(MODEL, serial=serial, mac=serial, settings={"acs.url": ACS_URL, **(settings or {})})
    phone = Phone(MODEL, state, clock=clock, ip="127.0.0.9")
    phone.reboot()
    return Rig(store, policy, handler, files, phone, now)
