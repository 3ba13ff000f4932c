"""AWS WAF web ACL for an internet-facing ALB: AWS managed rule groups plus per-IP rate limits."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aws_cdk import ArnFormat, RemovalPolicy, Stack
from aws_cdk import aws_logs as logs
from aws_cdk import aws_wafv2 as wafv2
from constructs import Construct

MANAGED_RULE_GROUPS = (
    "AWSManagedRulesAmazonIpReputationList",
    "AWSManagedRulesCommonRuleSet",
    "AWSManagedRulesKnownBadInputsRuleSet",
)


@dataclass(frozen=True)
class RateRule:
    """Requests per client IP per 5 minutes; `path_prefix` limits the rule to those paths,
    and `exclude_path_prefix` takes them out."""

    name: str
    limit: int
    path_prefix: str | None = None
    exclude_path_prefix: str | None = None


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )


def _starts_with(prefix: str) -> wafv2.CfnWebACL.StatementProperty:
    return wafv2.CfnWebACL.StatementProperty(
        byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
            positional_constraint="STARTS_WITH",
            search_string=prefix,
            text_transformations=[
                wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")
            ],
        )
    )


def _rate_rule(rule: RateRule, priority: int) -> wafv2.CfnWebACL.RuleProperty:
    scope_down: wafv2.CfnWebACL.StatementProperty | None = None
    if rule.path_prefix:
        scope_down = _starts_with(rule.path_prefix)
    elif rule.exclude_path_prefix:
        scope_down = wafv2.CfnWebACL.StatementProperty(
            not_statement=wafv2.CfnWebACL.NotStatementProperty(
                statement=_starts_with(rule.exclude_path_prefix)
            )
        )
    return wafv2.CfnWebACL.RuleProperty(
        name=rule.name,
        priority=priority,
        action=wafv2.CfnWebACL.RuleActionProperty(block={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                aggregate_key_type="IP", limit=rule.limit, scope_down_statement=scope_down
            )
        ),
        visibility_config=_visibility(rule.name),
    )


class WebAcl(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        name: str,
        rate_rules: Sequence[RateRule],
        log_retention: logs.RetentionDays,
    ) -> None:
        super().__init__(scope, id)
        rules = [
            wafv2.CfnWebACL.RuleProperty(
                name=group,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS", name=group
                    )
                ),
                visibility_config=_visibility(group),
            )
            for priority, group in enumerate(MANAGED_RULE_GROUPS)
        ]
        rules += [
            _rate_rule(rule, len(MANAGED_RULE_GROUPS) + i) for i, rule in enumerate(rate_rules)
        ]
        self.acl = wafv2.CfnWebACL(
            self,
            "Acl",
            name=name,
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            rules=rules,
            visibility_config=_visibility(name),
        )
        # WAF requires this name prefix. Credentials travel in the Authorization
        # header (session secret, agent secret, admin token) and stream tokens in
        # query strings and cookies: none of them is written to the log.
        log_group = logs.LogGroup(
            self,
            "Logs",
            log_group_name=f"aws-waf-logs-{Stack.of(self).stack_name}",
            retention=log_retention,
            removal_policy=RemovalPolicy.DESTROY,
        )
        # WAF wants the log group ARN without the ":*" that GetAtt adds.
        destination = Stack.of(self).format_arn(
            service="logs",
            resource="log-group",
            resource_name=log_group.log_group_name,
            arn_format=ArnFormat.COLON_RESOURCE_NAME,
        )
        wafv2.CfnLoggingConfiguration(
            self,
            "Logging",
            resource_arn=self.acl.attr_arn,
            log_destination_configs=[destination],
            redacted_fields=[
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(
                    single_header={"Name": "authorization"}
                ),
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(
                    single_header={"Name": "cookie"}
                ),
                wafv2.CfnLoggingConfiguration.FieldToMatchProperty(query_string={}),
            ],
        )

    def associate(self, id: str, resource_arn: str) -> wafv2.CfnWebACLAssociation:
        return wafv2.CfnWebACLAssociation(
            self, id, resource_arn=resource_arn, web_acl_arn=self.acl.attr_arn
        )
