"""coturn in the public subnets, one per availability zone, each on its own Elastic IP.

Each server is an Auto Scaling group of one (it comes back if it dies) whose
instance takes over the group's Elastic IP at boot, so clients always find it
at the same address: the TURN name of the region resolves to all of them.
Clients reach 3478 UDP/TCP from anywhere; the relay ports take traffic from
the GPU instances only, and coturn relays to this region's VPC only.
"""

from __future__ import annotations

import ipaddress

from aws_cdk import ArnFormat, Stack, Tags
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_s3_assets as s3_assets
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from streamfleet_cdk.boot import NodeBoot, Unit, script
from streamfleet_cdk.components.network import Network, web_egress
from streamfleet_cdk.components.node_group import NodeGroup, log_group
from streamfleet_cdk.config import TURN_PORT, TURN_RELAY_PORTS, AmiSource, RegionConfig
from streamfleet_cdk.nag import acknowledge, finding_arn

PREPARE = "/usr/local/sbin/streamfleet-turn-prepare"
ROLE_TAG = ("streamfleet:role", "turn")


def peer_range(cidr: str) -> str:
    """coturn's allowed-peer-ip takes a dash range, not a CIDR."""
    network = ipaddress.IPv4Network(cidr)
    return f"{network.network_address}-{network.broadcast_address}"


class TurnServers(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        region: RegionConfig,
        network: Network,
        ami: AmiSource,
        bundle: s3_assets.Asset,
        log_retention: logs.RetentionDays,
        turn_secret: secretsmanager.ISecret,
        domain_name: str,
        zone: route53.IHostedZone | None,
    ) -> None:
        super().__init__(scope, id)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=network.vpc,
            description="coturn: 3478 from anywhere, relay ports from the GPU instances",
            allow_all_outbound=False,
        )
        web_egress(self.security_group)
        for port in (ec2.Port.udp(TURN_PORT), ec2.Port.tcp(TURN_PORT)):
            self.security_group.add_ingress_rule(ec2.Peer.any_ipv4(), port, "TURN clients")
        acknowledge(
            self.security_group,
            "AwsSolutions-EC23",
            "TURN must be reachable by every browser: 3478 UDP/TCP only is open to the "
            "internet and needs time-limited HMAC credentials; relay ports are not open.",
        )
        self.log_group = log_group(self, "Logs", log_retention)
        self.unit = Unit(
            name="streamfleet-turn",
            description="coturn for streamfleet",
            user="turnserver",
            group="turnserver",
            prepare=PREPARE,
            exec_start="/usr/bin/turnserver -c /run/streamfleet/turnserver.conf",
        )
        self.addresses: list[ec2.CfnEIP] = []
        self.roles: list[iam.Role] = []
        public = network.vpc.select_subnets(subnet_type=ec2.SubnetType.PUBLIC)
        for index, subnet in enumerate(public.subnets):
            address = ec2.CfnEIP(self, f"Address{index}", domain="vpc")
            boot = (
                NodeBoot(
                    role="turn",
                    region=region.name,
                    bundle=bundle,
                    log_group=self.log_group,
                    packages=("coturn",),
                )
                .add_file(
                    PREPARE,
                    script(
                        "turn-prepare.sh",
                        turn_secret=turn_secret.secret_name,
                        peer_range=peer_range(region.vpc_cidr),
                    ),
                )
                .add_commands(script("turn-eip.sh", allocation_id=address.attr_allocation_id))
                .add_unit(self.unit)
            )
            nodes = NodeGroup(
                self,
                f"Server{index}",
                role_description=f"streamfleet coturn {index} of {region.name}",
                vpc=network.vpc,
                subnets=ec2.SubnetSelection(subnets=[subnet]),
                security_group=self.security_group,
                instance_type=region.turn.instance_type,
                ami=ami,
                region=region.name,
                bundle=bundle,
                log_group=self.log_group,
                boot=boot,
                min_size=1,
                max_size=1,
                # The launch address only serves the install; the Elastic IP replaces it.
                public_ip=True,
                rolling_update=False,
            )
            Tags.of(nodes.group).add(*ROLE_TAG)
            self._allow_address_takeover(nodes.role, address)
            self.addresses.append(address)
            self.roles.append(nodes.role)
        if zone is not None:
            route53.ARecord(
                self,
                "Record",
                zone=zone,
                record_name=domain_name,
                target=route53.RecordTarget.from_ip_addresses(
                    *(a.attr_public_ip for a in self.addresses)
                ),
            )

    def _allow_address_takeover(self, role: iam.Role, address: ec2.CfnEIP) -> None:
        stack = Stack.of(self)
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ec2:AssociateAddress"],
                resources=[
                    stack.format_arn(
                        service="ec2",
                        resource="elastic-ip",
                        resource_name=address.attr_allocation_id,
                        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
                    )
                ],
            )
        )
        role.add_to_policy(
            iam.PolicyStatement(
                actions=["ec2:AssociateAddress"],
                resources=[
                    stack.format_arn(
                        service="ec2",
                        resource="instance",
                        resource_name="*",
                        arn_format=ArnFormat.SLASH_RESOURCE_NAME,
                    )
                ],
                conditions={"StringEquals": {f"aws:ResourceTag/{ROLE_TAG[0]}": ROLE_TAG[1]}},
            )
        )
        acknowledge(
            role,
            f"AwsSolutions-IAM5[Resource::{finding_arn(self, 'ec2', 'instance/*')}]",
            "An instance id is known only at boot; the tag condition limits the takeover "
            "of this server's own Elastic IP to coturn instances.",
        )

    def allow_relay_from(self, gpu: ec2.IConnectable) -> None:
        """The GPU instances answer to the relayed (private) addresses' ports."""
        self.security_group.connections.allow_from(
            gpu, ec2.Port.udp_range(*TURN_RELAY_PORTS), "media from the GPU instances"
        )

    @property
    def turn_uris(self) -> list[str]:
        return [
            f"turn:{a.attr_public_ip}:{TURN_PORT}?transport={t}"
            for a in self.addresses
            for t in ("udp", "tcp")
        ]
