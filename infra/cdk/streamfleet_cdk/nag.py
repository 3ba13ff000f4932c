"""Acknowledged cdk-nag findings: each carries the reason a reviewer reads."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Stack, Token, Validations
from constructs import IConstruct

MIN_REASON = 40


def acknowledge(construct: IConstruct, rule: str, reason: str) -> None:
    """Acknowledge one AwsSolutions finding (`AwsSolutions-IAM5[Resource::*]` form
    for a single finding) on `construct` and everything below it."""
    if len(reason.strip()) < MIN_REASON:
        raise ValueError(f"{rule}: write out why ({MIN_REASON}+ characters), not {reason!r}")
    Validations.of(construct).acknowledge(Acknowledgment(id=rule, reason=reason.strip()))


def finding_arn(scope: IConstruct, service: str, resource: str) -> str:
    """An ARN of `scope`'s stack the way cdk-nag spells it inside a finding id
    (an unresolved account is printed as <AWS::AccountId>)."""
    stack = Stack.of(scope)
    account = "<AWS::AccountId>" if Token.is_unresolved(stack.account) else stack.account
    partition = "aws-cn" if stack.region.startswith("cn-") else "aws"
    return f"arn:{partition}:{service}:{stack.region}:{account}:{resource}"
