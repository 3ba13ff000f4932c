"""Reading synthesized templates without knowing their generated logical ids."""

from __future__ import annotations

import json
import re
from typing import Any

from aws_cdk.assertions import Match, Template


def flatten(value: Any) -> str:
    """A CloudFormation value as one string: Fn::Join joined, Ref as ${Id}, GetAtt as ${Id.Attr}."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and len(value) == 1:
        ((key, arg),) = value.items()
        if key == "Fn::Join":
            sep, parts = arg
            return sep.join(flatten(p) for p in parts)
        if key == "Ref":
            return "${" + arg + "}"
        if key == "Fn::GetAtt":
            return "${" + ".".join(arg) + "}"
        if key == "Fn::Base64":
            return flatten(arg)
    return json.dumps(value, sort_keys=True)


def one(template: Template, type_: str, properties: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The single resource of `type_` whose properties match; its logical id and properties."""
    found = template.find_resources(type_, {"Properties": Match.object_like(properties)})
    assert len(found) == 1, f"{len(found)} {type_} match {properties}"
    ((logical_id, resource),) = found.items()
    return logical_id, resource["Properties"]


def of_type(template: Template, type_: str) -> dict[str, dict[str, Any]]:
    return {k: v.get("Properties", {}) for k, v in template.find_resources(type_).items()}


def role_id(template: Template, description: str) -> str:
    logical_id, _ = one(
        template, "AWS::IAM::Role", {"Description": Match.string_like_regexp(description)}
    )
    return logical_id


def statements_of(template: Template, role: str) -> list[dict[str, Any]]:
    """Every policy statement attached to the role `role` (a logical id)."""
    statements: list[dict[str, Any]] = []
    for policy in of_type(template, "AWS::IAM::Policy").values():
        if {"Ref": role} in policy.get("Roles", []):
            statements += policy["PolicyDocument"]["Statement"]
    return statements


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


_SECRET = re.compile(r":secret:(.+)-\?{6}$")


def secrets_readable_by_role(template: Template) -> dict[str, set[str]]:
    """role logical id -> names of the secrets its policies let it read."""
    names_by_ref = {
        "${" + k + "}": p["Name"]
        for k, p in of_type(template, "AWS::SecretsManager::Secret").items()
    }
    result: dict[str, set[str]] = {}
    for policy in of_type(template, "AWS::IAM::Policy").values():
        for statement in policy["PolicyDocument"]["Statement"]:
            actions = as_list(statement["Action"])
            if not any(a.startswith("secretsmanager:") for a in actions):
                continue
            names = set()
            for resource in as_list(statement["Resource"]):
                text = flatten(resource)
                match = _SECRET.search(text)
                names.add(match.group(1) if match else names_by_ref.get(text, text))
            for role in policy.get("Roles", []):
                result.setdefault(role["Ref"], set()).update(names)
    return result
