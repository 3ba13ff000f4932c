"""The benchmarks' fast DescribeInstances (simulators/ec2_front.py) answers the
control plane's own EC2 lookup (control_plane/cloud.py, boto3) exactly as moto
does: the state and private IP moto records, and "no such instance"."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from control_plane.cloud import CloudRecord, Ec2Directory
from simulators.cloud import LocalCloud, start_cloud

REGION = "eu-central-1"


@pytest.fixture
def fleet_cloud(monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalCloud]:
    monkeypatch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")  # restored after the test
    cloud = start_cloud(default_amis=False, describe_front=True)
    try:
        yield cloud
    finally:
        cloud.stop()


async def test_the_front_and_moto_give_the_control_plane_the_same_records(
    fleet_cloud: LocalCloud,
) -> None:
    launched = fleet_cloud.launch_many(REGION, "127.61", 3)
    assert len({ip for _, ip in launched}) == 3
    assert all(ip.startswith("127.61.") for _, ip in launched)
    fleet_cloud.terminate(REGION, launched[2][0])
    front = Ec2Directory(fleet_cloud.describe_url)
    moto = Ec2Directory(fleet_cloud.endpoint_url)
    for iid, ip in launched:
        via_front = await front.lookup(REGION, iid)
        assert via_front == await moto.lookup(REGION, iid)
        assert via_front is not None and via_front.private_ip == ip
    assert await front.lookup(REGION, launched[0][0]) == CloudRecord(
        launched[0][0], "running", launched[0][1]
    )
    gone = await front.lookup(REGION, launched[2][0])
    assert gone is not None and gone.state not in ("pending", "running")
    assert await front.lookup(REGION, "i-0123456789abcdef0") is None
    assert await moto.lookup(REGION, "i-0123456789abcdef0") is None
    # Documents are signed at launch: what the instance's IMDS would serve.
    document, signature = fleet_cloud.identity(launched[0][0])
    assert launched[0][1] in document and signature
