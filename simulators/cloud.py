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

from simulators.imds import IdentitySigner, LocalImds
from simulators.local_aws import LocalAws, aws_client, fake_aws_environment

# moto accepts a large MaxCount; more per call means fewer reservations to scan.
LAUNCH_BATCH = 500


@dataclass
class LocalCloud:
    aws: LocalAws
    signer: IdentitySigner
    imds: LocalImds
    _subnets: dict[tuple[str, str], str] = field(default_factory=dict)

    @property
    def endpoint_url(self) -> str:
        return self.aws.endpoint_url

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

    def _image(self, region: str) -> str:
        image: str = self.ec2(region).describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        return image

    def launch(self, region: str, private_ip: str) -> str:
        """A running instance with this private IP; its identity document is signed."""
        iid: str = self.ec2(region).run_instances(
            ImageId=self._image(region), MinCount=1, MaxCount=1,
            SubnetId=self._subnet(region, private_ip), PrivateIpAddress=private_ip,
        )["Instances"][0]["InstanceId"]  # fmt: skip
        self.signer.document(iid, region, private_ip)
        return iid

    def launch_many(self, region: str, prefix: str, count: int) -> list[tuple[str, str]]:
        """`count` running instances in the /16 `prefix` ("127.11"), addresses as
        moto hands them out: [(instance id, private IP)], documents signed."""
        ec2, image, subnet = self.ec2(region), self._image(region), self._subnet(region, prefix)
        launched: list[tuple[str, str]] = []
        while len(launched) < count:
            n = min(LAUNCH_BATCH, count - len(launched))
            got = ec2.run_instances(ImageId=image, MinCount=n, MaxCount=n, SubnetId=subnet)
            for inst in got["Instances"]:
                iid, ip = str(inst["InstanceId"]), str(inst["PrivateIpAddress"])
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
        self.imds.stop()
        self.aws.stop()


def start_cloud() -> LocalCloud:
    # Whoever asks moto (the control plane included) uses the default credential
    # chain: the obviously fake ones, never real keys.
    os.environ.update(fake_aws_environment())
    signer = IdentitySigner()
    return LocalCloud(LocalAws().start(), signer, LocalImds(signer).start())
