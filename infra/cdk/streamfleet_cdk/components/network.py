"""A VPC with public and private subnets in the given zones, flow logs and endpoints."""

from __future__ import annotations

from collections.abc import Sequence

from aws_cdk import RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from constructs import Construct

# What instances call at boot and at run time; through these they stay off NAT.
BASE_ENDPOINTS = {
    "SecretsManager": ec2.InterfaceVpcEndpointAwsService.SECRETS_MANAGER,
    "Logs": ec2.InterfaceVpcEndpointAwsService.CLOUDWATCH_LOGS,
    "Ssm": ec2.InterfaceVpcEndpointAwsService.SSM,
    "SsmMessages": ec2.InterfaceVpcEndpointAwsService.SSM_MESSAGES,
    "Ec2Messages": ec2.InterfaceVpcEndpointAwsService.EC2_MESSAGES,
}
# The GPU lifecycle hook and the pool manager (Auto Scaling + EC2 APIs).
REGIONAL_ENDPOINTS = {
    "AutoScaling": ec2.InterfaceVpcEndpointAwsService.AUTOSCALING,
    "Ec2": ec2.InterfaceVpcEndpointAwsService.EC2,
}


def web_egress(security_group: ec2.SecurityGroup) -> None:
    """What every node may reach: HTTPS (AWS APIs, the control plane, PyPI) and
    HTTP (Debian/Ubuntu mirrors). Anything else is opened peer to peer."""
    security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(443), "HTTPS out")
    security_group.add_egress_rule(ec2.Peer.any_ipv4(), ec2.Port.tcp(80), "package mirrors")


class Network(Construct):
    """Public subnets (load balancers, NAT, coturn) and private subnets (everything else)."""

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        cidr: str,
        availability_zones: Sequence[str],
        nat_gateways: int,
        log_retention: logs.RetentionDays,
        interface_endpoints: dict[str, ec2.InterfaceVpcEndpointAwsService],
    ) -> None:
        super().__init__(scope, id)
        self.vpc = ec2.Vpc(
            self,
            "Vpc",
            ip_addresses=ec2.IpAddresses.cidr(cidr),
            availability_zones=list(availability_zones),
            nat_gateways=nat_gateways,
            subnet_configuration=[
                ec2.SubnetConfiguration(
                    name="public", subnet_type=ec2.SubnetType.PUBLIC, cidr_mask=22
                ),
                ec2.SubnetConfiguration(
                    name="private", subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS, cidr_mask=19
                ),
            ],
        )
        flow_logs = logs.LogGroup(
            self, "FlowLogs", retention=log_retention, removal_policy=RemovalPolicy.RETAIN
        )
        self.vpc.add_flow_log(
            "FlowLog",
            destination=ec2.FlowLogDestination.to_cloud_watch_logs(flow_logs),
            traffic_type=ec2.FlowLogTrafficType.ALL,
        )
        # Free; the wheelhouse and the CloudWatch agent package are S3 downloads.
        self.vpc.add_gateway_endpoint(
            "S3", service=ec2.GatewayVpcEndpointAwsService.S3, subnets=[self.private_selection]
        )
        for name, service in interface_endpoints.items():
            endpoint = self.vpc.add_interface_endpoint(
                name,
                service=service,
                private_dns_enabled=True,
                subnets=self.private_selection,
                open=False,
            )
            endpoint.connections.allow_default_port_from(ec2.Peer.ipv4(cidr), "HTTPS from this VPC")

    @property
    def private_selection(self) -> ec2.SubnetSelection:
        return ec2.SubnetSelection(subnet_type=ec2.SubnetType.PRIVATE_WITH_EGRESS)

    @property
    def public_selection(self) -> ec2.SubnetSelection:
        return ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC)
