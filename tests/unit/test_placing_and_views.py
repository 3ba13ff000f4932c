"""The placement journal codec and the one-row-per-IP rule of the ops views."""

from __future__ import annotations

from control_plane.broker import placing
from control_plane.broker.placing import Placing
from control_plane.broker.views import one_row_per_ip
from streamfleet.lifecycle import InstanceState
from streamfleet.wire import InstanceView

SID = "0" * 32 + "-" + "a" * 16


def test_placing_round_trips() -> None:
    p = Placing(SID, ("eu-central-1", "eu-west-1"), ("eu-central-1",))
    text = placing.encode(p)
    assert text == f"{SID}|eu-central-1,eu-west-1|eu-central-1"
    assert placing.decode(text) == p


def test_placing_refuses_what_is_not_an_entry() -> None:
    assert placing.decode("") is None
    assert placing.decode("bind|x|y|1") is None
    assert placing.decode("|eu-central-1|eu-central-1") is None


def row(iid: str, ip: str | None, state: InstanceState, age: float) -> InstanceView:
    return InstanceView(
        instance_id=iid, state=state, session_id=None, private_ip=ip, instance_type="",
        state_age_s=age, heartbeat_age_s=None, draining=False,
    )  # fmt: skip


def test_one_row_per_ip_keeps_the_instance_in_service_else_the_newest() -> None:
    rows = [
        row("i-a", "127.11.0.1", InstanceState.TERMINATED, 5.0),
        row("i-b", "127.11.0.1", InstanceState.READY, 60.0),
        row("i-c", "127.11.0.2", InstanceState.LOST, 90.0),
        row("i-d", "127.11.0.2", InstanceState.TERMINATED, 10.0),
        row("i-e", "127.11.0.3", InstanceState.STREAMING, 1.0),
        row("i-f", None, InstanceState.BOOTING, 1.0),
    ]
    assert [r.instance_id for r in one_row_per_ip(rows)] == ["i-b", "i-d", "i-e", "i-f"]
