"""The cloud agents attest against: moto's EC2 (what the cloud records) and a
simulated IMDS signer (the identity documents it signs).

Instances launched here sit in a subnet of their region with a private IP of
its range (a loopback /16 locally, so an agent can really listen on it), and
their identity documents are signed at launch, as AWS does. Tests launch one
instance at a time with the IP they name; the benchmarks launch thousands in
a few `RunInstances` calls and take the IPs moto gives (one reservation per
call keeps moto's per-lookup scan short). Test and simulation code only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from simulators.ec2_front import Ec2Front
from simulators.imds import IdentitySigner, LocalImds
from simulators.local_aws import (
    DEFAULT_INSTANCE_TYPE,
    LocalAws,
    aws_client,
    fake_aws_environment,
)

# moto accepts a large MaxCount; more per call means fewer reservations to scan.
LAUNCH_BATCH = 500
PLAIN_IMAGE = "ami-12c6146b"


@dataclass
class LocalCloud:
    aws: LocalAws
    signer: IdentitySigner
    imds: LocalImds
    front: Ec2Front | None = None
    _subnets: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def endpoint_url(self) -> str:
        return self.aws.endpoint_url

    @property
    def describe_url(self) -> str:
        """Where the control plane asks EC2 about instances: moto, or the fast front."""
        return self.front.endpoint_url if self.front else self.aws.endpoint_url

    def public_pem(self) -> str:
        return self.signer.public_pem()

    def ec2(self, region: str) -> Any:
        return aws_client("ec2", region, self.endpoint_url)

    def _subnet(self, region: str, ip: str) -> str:
        """The region's subnet holding `ip`'s /16 (one VPC and subnet per /16)."""
        prefix = ".".join(ip.split(".")[:2])
        if (region, prefix) not in self._subnets:
            ec2 = self.ec2(region)
            vpc = ec2.create_vpc(CidrBlock=f"{prefix}.0.0/16")["Vpc"]["VpcId"]
            self._subnets[region, prefix] = ec2.create_subnet(
                VpcId=vpc, CidrBlock=f"{prefix}.0.0/16"
            )["Subnet"]["SubnetId"]
        return self._subnets[region, prefix]

    def image_id(self, region: str) -> str:
        """An image to launch from (any id, when moto loads no default AMIs)."""
        images = self.ec2(region).describe_images(Owners=["amazon"])["Images"]
        # Without moto's default AMIs (start_cloud(default_amis=False)) any id launches.
        return str(images[0]["ImageId"]) if images else PLAIN_IMAGE

    def launch(self, region: str, private_ip: str) -> str:
        """A running instance with this private IP; its identity document is signed."""
        iid: str = self.ec2(region).run_instances(
            ImageId=self.image_id(region), MinCount=1, MaxCount=1,
            SubnetId=self._subnet(region, private_ip), PrivateIpAddress=private_ip,
        )["Instances"][0]["InstanceId"]  # fmt: skip
        self.signer.document(iid, region, private_ip)
        return iid

    def launch_many(self, region: str, prefix: str, count: int) -> list[tuple[str, str]]:
        """`count` running instances in the /16 `prefix` ("127.11"), addresses as
        moto hands them out: [(instance id, private IP)], documents signed.

        Through moto's EC2 model in this process (the server shares it), not its
        HTTP API: the answer to RunInstances costs moto ~10 ms an instance to
        serialize, which thousands of instances would spend for ids and IPs only."""
        from moto.core.models import DEFAULT_ACCOUNT_ID
        from moto.ec2.models import ec2_backends

        image, subnet = self.image_id(region), self._subnet(region, prefix)
        backend = ec2_backends[DEFAULT_ACCOUNT_ID][region]
        launched: list[tuple[str, str]] = []
        while len(launched) < count:
            n = min(LAUNCH_BATCH, count - len(launched))
            reservation = backend.run_instances(image, n, None, [], **_launch_args(region, subnet))
            for inst in reservation.instances:
                iid, ip = str(inst.id), str(inst.private_ip)
                self.signer.document(iid, region, ip)
                launched.append((iid, ip))
        return launched

    def terminate(self, region: str, instance_id: str) -> None:
        self.ec2(region).terminate_instances(InstanceIds=[instance_id])

    def identity(self, instance_id: str) -> tuple[str, str]:
        """(document, signature) as the instance's IMDS answers."""
        document = self.signer.documents[instance_id]
        return document, self.signer.sign(document)

    def stop(self) -> None:
        if self.front:
            self.front.stop()
        self.imds.stop()
        self.aws.stop()


def _launch_args(region: str, subnet: str) -> dict[str, Any]:
    """RunInstances' parameters as moto's response layer hands them to its model
    (moto/ec2/responses/instances.py), for a plain launch into `subnet`."""
    return {
        "instance_type": DEFAULT_INSTANCE_TYPE, "is_instance_type_default": False,
        "placement": None, "placement_hostid": None, "region_name": region,
        "subnet_id": subnet, "key_name": None, "security_group_ids": [], "nics": [],
        "private_ip": None, "associate_public_ip": None, "tags": {}, "ebs_optimized": False,
        "disable_api_stop": False, "instance_market_options": {},
        "instance_initiated_shutdown_behavior": None, "launch_template": {},
        "hibernation_options": {}, "iam_instance_profile_name": None,
        "iam_instance_profile_arn": None, "monitoring_state": "disabled",
        "ipv6_address_count": None, "metadata_options": {}, "client_token": "ABCDE",
    }  # fmt: skip


def start_cloud(*, default_amis: bool = True, describe_front: bool = False) -> LocalCloud:
    """For fleets of thousands: `default_amis=False`, moto loads none of its
    thousands of AMIs, which it otherwise scans on every launch (~30 ms an
    instance); `describe_front=True`, DescribeInstances from moto's records
    without moto's serializer (simulators/ec2_front.py)."""
    # Whoever asks moto (the control plane included) uses the default credential
    # chain: the obviously fake ones, never real keys.
    os.environ.update(fake_aws_environment())
    if not default_amis:
        os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"
    signer = IdentitySigner()
    front = Ec2Front().start() if describe_front else None
    return LocalCloud(LocalAws().start(), signer, LocalImds(signer).start(), front)
