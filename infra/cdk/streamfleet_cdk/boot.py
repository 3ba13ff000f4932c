"""User data of every streamfleet instance: first-boot setup plus systemd units.

All roles (control plane, router, GPU agent, coturn, pool manager) boot the
same way: `boot/common.sh` installs streamfleet with the role's extra from the
deployment's wheelhouse (offline, every file checked against the lock's hashes), the CloudWatch agent ships /var/log/streamfleet to the role's log
group, and each service is a systemd unit. A unit's settings come from two
environment files: the static ones written here (`/etc/streamfleet/NAME.env`)
and the secret and instance-specific ones written at every start by
`streamfleet-env` under /run (`ExecStartPre`). Secrets are referenced by name
only, so nothing secret is ever part of a template or of user data.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources

from aws_cdk import Token
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3_assets as s3_assets

_PLACEHOLDER = re.compile(r"@@([A-Z0-9_]+)@@")
_ENV_NAME = re.compile(r"[A-Z][A-Z0-9_]*")


def script(name: str, **values: object) -> str:
    """A boot/ template with every @@NAME@@ filled in; a missing value is an error."""
    text = resources.files(__package__).joinpath("boot", name).read_text(encoding="utf-8")

    def sub(match: re.Match[str]) -> str:
        key = match.group(1).lower()
        if key not in values:
            raise KeyError(f"boot/{name}: no value for {match.group(0)}")
        return str(values[key])

    return _PLACEHOLDER.sub(sub, text)


def _env_line(name: str, value: str) -> str:
    if not _ENV_NAME.fullmatch(name):
        raise ValueError(f"not an environment variable name: {name}")
    if not Token.is_unresolved(value) and ("'" in value or "\n" in value):
        raise ValueError(f"{name}: a quote or newline cannot go into an EnvironmentFile")
    return f"{name}='{value}'"


@dataclass(frozen=True)
class Unit:
    """One systemd service of a node."""

    name: str
    description: str
    exec_start: str
    static_env: Mapping[str, str] = field(default_factory=dict)
    # VAR -> Secrets Manager name (read in this region: the secret or its replica).
    secret_env: Mapping[str, str] = field(default_factory=dict)
    # VAR -> instance metadata path below meta-data/.
    imds_env: Mapping[str, str] = field(default_factory=dict)
    user: str = "streamfleet"
    group: str | None = None
    # An extra ExecStartPre command, run as root after the environment is written.
    prepare: str | None = None
    # `systemctl reload`: re-run `prepare`, then this (e.g. HUP for nginx).
    reload: str | None = None
    # False: not started at boot; another unit starts it (the GPU lifecycle hook).
    start_at_boot: bool = True
    service_type: str = "simple"
    restart: str = "always"

    def env_file(self) -> str:
        lines = [_env_line(k, v) for k, v in sorted(self.static_env.items())]
        return "\n".join(lines) + "\n"

    def unit_file(self) -> str:
        dynamic = [f"{k}=secret:{v}" for k, v in sorted(self.secret_env.items())]
        dynamic += [f"{k}=imds:{v}" for k, v in sorted(self.imds_env.items())]
        lines = [
            "[Unit]",
            f"Description={self.description}",
            "Wants=network-online.target",
            "After=network-online.target",
            "StartLimitIntervalSec=0",
            "",
            "[Service]",
            f"Type={self.service_type}",
            f"User={self.user}",
        ]
        if self.group:
            lines.append(f"Group={self.group}")
        if self.static_env:
            lines.append(f"EnvironmentFile=/etc/streamfleet/{self.name}.env")
        if dynamic:
            runtime = f"/run/streamfleet/{self.name}.env"
            lines.append(f"EnvironmentFile=-{runtime}")
            lines.append(
                f"ExecStartPre=+/usr/local/sbin/streamfleet-env {runtime} " + " ".join(dynamic)
            )
        if self.prepare:
            lines.append(f"ExecStartPre=+{self.prepare}")
        lines += [f"ExecStart={self.exec_start}"]
        if self.reload:
            if self.prepare:
                lines.append(f"ExecReload=+{self.prepare}")
            lines.append(f"ExecReload={self.reload}")
        if self.service_type != "oneshot":
            lines += [f"Restart={self.restart}", "RestartSec=2"]
        lines += [
            f"StandardOutput=append:/var/log/streamfleet/{self.name}.log",
            "StandardError=inherit",
            "NoNewPrivileges=yes",
            "PrivateTmp=yes",
            "ProtectHome=yes",
            "",
            "[Install]",
            "WantedBy=multi-user.target",
        ]
        return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class PrometheusScrape:
    """Gauges the CloudWatch agent turns into metrics (embedded metric format)."""

    job: str
    target: str  # host:port
    metrics_path: str
    namespace: str
    metric_names: tuple[str, ...]


class NodeBoot:
    """Builds the user data of one role's launch template."""

    def __init__(
        self,
        *,
        role: str,
        region: str,
        bundle: s3_assets.Asset,
        log_group: logs.ILogGroup,
        packages: tuple[str, ...] = (),
        prometheus: PrometheusScrape | None = None,
        extra: str = "server",
    ) -> None:
        self.role = role
        # The install extra (pyproject): "agent" on GPU instances, "server" elsewhere.
        self.extra = extra
        self.region = region
        self.bundle = bundle
        self.log_group = log_group
        self.packages = packages
        self.prometheus = prometheus
        self._files: list[tuple[str, str, str]] = []
        self._units: list[Unit] = []
        self._commands: list[str] = []

    def add_file(self, path: str, content: str, mode: str = "0755") -> NodeBoot:
        self._files.append((path, content, mode))
        return self

    def add_unit(self, unit: Unit) -> NodeBoot:
        self._units.append(unit)
        return self

    def add_commands(self, *commands: str) -> NodeBoot:
        """Shell run once at first boot, after the install, before units start."""
        self._commands.extend(commands)
        return self

    def _agent_config(self) -> str:
        config: dict[str, object] = {
            "agent": {"region": self.region},
            "logs": {
                "logs_collected": {
                    "files": {
                        "collect_list": [
                            {
                                "file_path": "/var/log/streamfleet/*.log",
                                "log_group_name": self.log_group.log_group_name,
                                "log_stream_name": "{instance_id}",
                            },
                            {
                                "file_path": "/var/log/streamfleet-bootstrap.log",
                                "log_group_name": self.log_group.log_group_name,
                                "log_stream_name": "{instance_id}-bootstrap",
                            },
                        ]
                    }
                }
            },
        }
        if self.prometheus:
            p = self.prometheus
            logs_section = config["logs"]
            assert isinstance(logs_section, dict)
            logs_section["metrics_collected"] = {
                "prometheus": {
                    "log_group_name": self.log_group.log_group_name,
                    "prometheus_config_path": "/opt/aws/amazon-cloudwatch-agent/etc/prometheus.yaml",
                    "emf_processor": {
                        "metric_declaration_dedup": True,
                        "metric_namespace": p.namespace,
                        "metric_declaration": [
                            {
                                "source_labels": ["job"],
                                "label_matcher": f"^{p.job}$",
                                "dimensions": [["job"]],
                                "metric_selectors": [f"^{n}$" for n in p.metric_names],
                            }
                        ],
                    },
                }
            }
        return json.dumps(config, indent=1)

    def _prometheus_yaml(self) -> str:
        assert self.prometheus is not None
        p = self.prometheus
        return (
            "global:\n  scrape_interval: 30s\n  scrape_timeout: 10s\n"
            f"scrape_configs:\n  - job_name: {p.job}\n    metrics_path: {p.metrics_path}\n"
            f"    static_configs:\n      - targets: ['{p.target}']\n"
        )

    def render(self) -> str:
        parts = [
            script(
                "common.sh",
                role=self.role,
                region=self.region,
                packages=" ".join(self.packages),
                extra=self.extra,
                bundle_bucket=self.bundle.s3_bucket_name,
                bundle_key=self.bundle.s3_object_key,
                cloudwatch_agent_config=self._agent_config(),
            )
        ]
        files = list(self._files)
        if self.prometheus:
            files.append(
                (
                    "/opt/aws/amazon-cloudwatch-agent/etc/prometheus.yaml",
                    self._prometheus_yaml(),
                    "0644",
                )
            )
        for unit in self._units:
            if unit.static_env:
                files.append((f"/etc/streamfleet/{unit.name}.env", unit.env_file(), "0644"))
            files.append((f"/etc/systemd/system/{unit.name}.service", unit.unit_file(), "0644"))
        for path, content, mode in files:
            marker = "STREAMFLEET_FILE_END"
            if marker in content:
                raise ValueError(f"{path}: content holds the heredoc marker")
            parts.append(
                f"install -d -m 0755 \"$(dirname '{path}')\"\n"
                f"cat >'{path}' <<'{marker}'\n{content.rstrip()}\n{marker}\n"
                f"chmod {mode} '{path}'"
            )
        parts.extend(self._commands)
        starts = [
            f"systemctl enable --now --no-block {u.name}.service"
            for u in self._units
            if u.start_at_boot
        ]
        parts.append(script("finish.sh", start="\n".join(starts)))
        return "\n".join(parts) + "\n"

    def user_data(self) -> ec2.UserData:
        return ec2.UserData.custom(self.render())
