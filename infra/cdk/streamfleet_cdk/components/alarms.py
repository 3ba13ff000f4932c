"""The alarm topic of a stack (KMS-encrypted SNS) and the alarms that publish to it."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from constructs import Construct

ONE_MINUTE = Duration.minutes(1)
FIVE_MINUTES = Duration.minutes(5)


class AlarmTopic(Construct):
    def __init__(self, scope: Construct, id: str, *, email: str | None) -> None:
        super().__init__(scope, id)
        key = kms.Key(
            self,
            "Key",
            enable_key_rotation=True,
            description="encrypts streamfleet alarm notifications",
        )
        # CloudWatch publishes alarm notifications to the encrypted topic.
        key.grant(
            iam.ServicePrincipal("cloudwatch.amazonaws.com"), "kms:Decrypt", "kms:GenerateDataKey*"
        )
        self.topic = sns.Topic(self, "Topic", master_key=key, enforce_ssl=True)
        if email:
            self.topic.add_subscription(subscriptions.EmailSubscription(email))
        self._action = actions.SnsAction(self.topic)

    def alarm(
        self,
        id: str,
        *,
        metric: cloudwatch.IMetric,
        threshold: float,
        description: str,
        evaluation_periods: int = 3,
        comparison: cloudwatch.ComparisonOperator = (
            cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD
        ),
    ) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self,
            id,
            metric=metric,
            threshold=threshold,
            evaluation_periods=evaluation_periods,
            comparison_operator=comparison,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(self._action)
        alarm.add_ok_action(self._action)
        return alarm

    def load_balancer_alarms(
        self,
        *,
        alb: elbv2.ApplicationLoadBalancer,
        targets: elbv2.ApplicationTargetGroup,
        service: str,
    ) -> None:
        """5xx from the targets or the ALB itself, and targets failing health checks."""
        self.alarm(
            "Http5xx",
            metric=cloudwatch.MathExpression(
                expression="target + elb",
                using_metrics={
                    "target": alb.metrics.http_code_target(
                        elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=ONE_MINUTE
                    ),
                    "elb": alb.metrics.http_code_elb(
                        elbv2.HttpCodeElb.ELB_5XX_COUNT, period=ONE_MINUTE
                    ),
                },
                label="5xx responses",
                period=ONE_MINUTE,
            ),
            threshold=10,
            description=f"{service} answers 5xx (bad input must be 4xx, never 5xx)",
        )
        self.alarm(
            "UnhealthyHosts",
            metric=targets.metrics.unhealthy_host_count(period=ONE_MINUTE, statistic="Maximum"),
            threshold=1,
            description=f"an instance of {service} fails its ALB health check",
        )
