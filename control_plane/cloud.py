"""What the cloud records about an instance now: EC2 DescribeInstances.

The identity document is signed once, at launch; this is the present tense:
the instance still exists in our account (ids are looked up with the control
plane's own credentials, so another account's instance is never found), it
is running, and its private IP is the one the agent claims. Locally the
endpoint is moto (simulators/local_aws.py); on AWS it is left unset.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError


class CloudUnavailable(RuntimeError):
    """The cloud could not be asked (throttled, unreachable): try again later."""


@dataclass(frozen=True, slots=True)
class CloudRecord:
    instance_id: str
    state: str  # pending | running | stopping | stopped | shutting-down | terminated
    private_ip: str


class Ec2Directory:
    def __init__(self, endpoint_url: str | None = None) -> None:
        self._endpoint_url = endpoint_url or None
        self._clients: dict[str, Any] = {}
        self._config = Config(retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=3,
                              read_timeout=5)  # fmt: skip

    def _client(self, region: str) -> Any:
        if region not in self._clients:
            self._clients[region] = boto3.client(
                "ec2", region_name=region, endpoint_url=self._endpoint_url, config=self._config
            )
        return self._clients[region]

    def _lookup(self, region: str, instance_id: str) -> CloudRecord | None:
        try:
            reservations = self._client(region).describe_instances(InstanceIds=[instance_id])[
                "Reservations"
            ]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "").startswith("InvalidInstanceID"):
                return None
            raise CloudUnavailable(f"DescribeInstances: {exc}") from None
        except BotoCoreError as exc:
            raise CloudUnavailable(f"DescribeInstances: {exc}") from None
        for reservation in reservations:
            for inst in reservation.get("Instances", []):
                if inst.get("InstanceId") == instance_id:
                    return CloudRecord(
                        instance_id=instance_id,
                        state=str(inst.get("State", {}).get("Name", "")),
                        private_ip=str(inst.get("PrivateIpAddress", "")),
                    )
        return None

    async def lookup(self, region: str, instance_id: str) -> CloudRecord | None:
        """The instance as EC2 records it in `region`, or None when there is no such instance."""
        return await asyncio.to_thread(self._lookup, region, instance_id)
