"""An internet-facing ALB: HTTPS only (HTTP redirects), WAF, access logs, optional Shield Advanced."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_certificatemanager as acm
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_route53 as route53
from aws_cdk import aws_route53_targets as targets
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_shield as shield
from constructs import Construct

from streamfleet_cdk.components.web_acl import WebAcl
from streamfleet_cdk.config import Dns
from streamfleet_cdk.nag import acknowledge


def hosted_zone(scope: Construct, dns: Dns) -> route53.IHostedZone | None:
    if dns.hosted_zone_id is None:
        return None
    return route53.HostedZone.from_hosted_zone_attributes(
        scope, "Zone", hosted_zone_id=dns.hosted_zone_id, zone_name=dns.zone_name
    )


def certificate(
    scope: Construct, dns: Dns, domain_name: str, zone: route53.IHostedZone | None
) -> acm.ICertificate:
    """The configured ACM certificate of `domain_name`, or a new DNS-validated one."""
    arn = dns.certificate_arns.get(domain_name)
    if arn is not None:
        return acm.Certificate.from_certificate_arn(scope, "Certificate", arn)
    if zone is None:  # config validation rules this out; keep the error explicit anyway
        raise ValueError(f"{domain_name}: no certificate ARN and no hosted zone")
    return acm.Certificate(
        scope,
        "Certificate",
        domain_name=domain_name,
        validation=acm.CertificateValidation.from_dns(zone),
    )


class PublicAlb(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        vpc: ec2.IVpc,
        domain_name: str,
        certificate: acm.ICertificate,
        zone: route53.IHostedZone | None,
        web_acl: WebAcl,
        shield_advanced: bool,
        idle_timeout: Duration,
    ) -> None:
        super().__init__(scope, id)
        self.domain_name = domain_name
        logs_bucket = s3.Bucket(
            self,
            "AccessLogs",
            encryption=s3.BucketEncryption.S3_MANAGED,  # the only kind ALB log delivery writes
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(90))],
            removal_policy=RemovalPolicy.RETAIN,
        )
        acknowledge(
            logs_bucket,
            "AwsSolutions-S1",
            "This bucket holds the load balancer's access logs; logging access to the "
            "log bucket itself would need yet another bucket and adds nothing to review.",
        )
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description=f"internet-facing ALB of {domain_name}: HTTPS in, targets out",
            allow_all_outbound=False,
        )
        self.alb = elbv2.ApplicationLoadBalancer(
            self,
            "Alb",
            vpc=vpc,
            internet_facing=True,
            vpc_subnets=ec2.SubnetSelection(subnet_type=ec2.SubnetType.PUBLIC),
            security_group=self.security_group,
            drop_invalid_header_fields=True,
            idle_timeout=idle_timeout,
        )
        self.alb.log_access_logs(logs_bucket)
        self.https = self.alb.add_listener(
            "Https",
            port=443,
            certificates=[certificate],
            ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
        )
        self.alb.add_redirect(source_port=80, target_port=443)
        acknowledge(
            self.security_group,
            "AwsSolutions-EC23",
            "Internet-facing load balancer of a public web endpoint: ports 443 and 80 "
            "(redirect only) are open to every address on purpose; AWS WAF filters them.",
        )
        web_acl.associate("WafAssociation", self.alb.load_balancer_arn)
        if shield_advanced:
            shield.CfnProtection(
                self,
                "Shield",
                name=f"{domain_name}-alb",
                resource_arn=self.alb.load_balancer_arn,
                application_layer_automatic_response_configuration=shield.CfnProtection.ApplicationLayerAutomaticResponseConfigurationProperty(
                    action=shield.CfnProtection.ActionProperty(count={}), status="ENABLED"
                ),
            )
        if zone is not None:
            route53.ARecord(
                self,
                "Alias",
                zone=zone,
                record_name=domain_name,
                target=route53.RecordTarget.from_alias(targets.LoadBalancerTarget(self.alb)),
            )

    @property
    def url(self) -> str:
        return f"https://{self.domain_name}"
