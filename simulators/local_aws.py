"""A local AWS (moto server) and one regional stack per region: VPC, two subnets, template, group.

Used by the pool manager's integration tests and by the local stack launcher;
test and simulation code, so it lives here and never in a production package
(the production pool manager only takes an endpoint URL).
Credentials are the obviously fake "testing": moto accepts anything, and real
keys must never be needed (or found) here.
"""

from __future__ import annotations

import logging
import os
import urllib.request
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config

from streamfleet.localproc import free_port, port_open, wait_for

if TYPE_CHECKING:
    from mypy_boto3_autoscaling import AutoScalingClient
    from mypy_boto3_ec2 import EC2Client

FAKE_CREDENTIAL = "testing"
DEFAULT_INSTANCE_TYPE = "g4dn.2xlarge"


def fake_aws_environment() -> dict[str, str]:
    """Environment for processes that talk to moto (and can never reach real AWS keys)."""
    return {
        "AWS_ACCESS_KEY_ID": FAKE_CREDENTIAL,
        "AWS_SECRET_ACCESS_KEY": FAKE_CREDENTIAL,
        "AWS_SESSION_TOKEN": FAKE_CREDENTIAL,
        "AWS_DEFAULT_REGION": "eu-central-1",
    }


class LocalAws:
    """moto's threaded server on 127.0.0.1; `stop()` ends it, `reset()` clears all state."""

    def __init__(self, port: int | None = None) -> None:
        from moto.server import ThreadedMotoServer

        self.port = port or free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)

    def start(self) -> LocalAws:
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server.start()
        wait_for(lambda: port_open("127.0.0.1", self.port), what="moto server", timeout=20)
        return self

    def stop(self) -> None:
        self._server.stop()

    def reset(self) -> None:
        url = f"{self.endpoint_url}/moto-api/reset"
        request = urllib.request.Request(url, method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass


def aws_client(service: str, region: str, endpoint_url: str, config: Config | None = None) -> Any:
    return boto3.client(  # type: ignore[call-overload]
        service,
        region_name=region,
        endpoint_url=endpoint_url,
        config=config,
        aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", FAKE_CREDENTIAL),
        aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", FAKE_CREDENTIAL),
    )


@dataclass(frozen=True)
class RegionalStack:
    region: str
    vpc_id: str
    subnets: tuple[str, ...]  # one per availability zone, "a" then "b"
    launch_template_id: str
    group_name: str


def create_regional_stack(
    endpoint_url: str,
    region: str,
    *,
    group_name: str = "streamfleet-gpu",
    instance_type: str = DEFAULT_INSTANCE_TYPE,
    desired: int = 0,
    max_size: int = 20,
    cidr_second_octet: int = 11,
    warm_pool: bool = True,
    cidr_prefix: str | None = None,
) -> RegionalStack:
    """Create the region's network, launch template and Auto Scaling group in moto.
    `cidr_prefix` ("127.11"): the VPC's first two octets (default 10.<second octet>);
    the local stack uses the region's loopback /16, so the private IP moto gives an
    instance is one its agent can listen on."""
    ec2: EC2Client = aws_client("ec2", region, endpoint_url)
    autoscaling: AutoScalingClient = aws_client("autoscaling", region, endpoint_url)
    prefix = cidr_prefix or f"10.{cidr_second_octet}"
    vpc_id = ec2.create_vpc(CidrBlock=f"{prefix}.0.0/16")["Vpc"]["VpcId"]
    subnets = tuple(
        ec2.create_subnet(
            VpcId=vpc_id, CidrBlock=f"{prefix}.{n}.0/24", AvailabilityZone=f"{region}{zone}"
        )["Subnet"]["SubnetId"]
        for n, zone in ((1, "a"), (2, "b"))
    )
    image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    template_id = ec2.create_launch_template(
        LaunchTemplateName=f"{group_name}-{region}",
        LaunchTemplateData={"ImageId": image_id, "InstanceType": instance_type},  # type: ignore[typeddict-item]
    )["LaunchTemplate"]["LaunchTemplateId"]
    autoscaling.create_auto_scaling_group(
        AutoScalingGroupName=group_name,
        LaunchTemplate={"LaunchTemplateId": template_id, "Version": "1"},
        MinSize=0,
        MaxSize=max_size,
        DesiredCapacity=desired,
        VPCZoneIdentifier=",".join(subnets),
    )
    if warm_pool:
        # Stopped instances, reused on scale-in. moto stores this configuration
        # but keeps no instances in the warm pool (describe_warm_pool lists none).
        autoscaling.put_warm_pool(
            AutoScalingGroupName=group_name,
            PoolState="Stopped",
            MinSize=0,
            InstanceReusePolicy={"ReuseOnScaleIn": True},
        )
    return RegionalStack(region, vpc_id, subnets, template_id, group_name)
