"""Geo-IP on the control plane: the City database fetched at boot and refreshed on a timer.

Each control-plane instance runs `streamfleet-geoip` (boot/geoip-refresh.sh) once
at boot and then on the configured calendar, from the deployment's S3 object or
from MaxMind with a licence kept in Secrets Manager. The control plane reads
STREAMFLEET_GEOIP_DB and picks up a new file by itself (control_plane/geo.py).
A scheduled job on the instances, not a Lambda: each instance needs the file on
its own disk anyway, and the job reuses their role, logs and network.
"""

from __future__ import annotations

from aws_cdk import Stack
from aws_cdk import aws_iam as iam
from aws_cdk import aws_secretsmanager as secretsmanager
from constructs import Construct

from streamfleet_cdk.boot import NodeBoot, Unit, script
from streamfleet_cdk.components.secrets import imported
from streamfleet_cdk.config import GeoIp, s3_parts

REFRESH_SCRIPT = "/usr/local/sbin/streamfleet-geoip"
UNIT = "streamfleet-geoip"


def timer_file(geoip: GeoIp) -> str:
    return "\n".join(
        [
            "[Unit]",
            "Description=refresh the streamfleet geo-IP City database",
            "",
            "[Timer]",
            f"OnCalendar={geoip.refresh}",
            # Instances of one group do not all call MaxMind in the same second.
            "RandomizedDelaySec=1h",
            "Persistent=true",
            "",
            "[Install]",
            "WantedBy=timers.target",
            "",
        ]
    )


class GeoIpRefresh(Construct):
    def __init__(self, scope: Construct, id: str, *, geoip: GeoIp, region: str) -> None:
        super().__init__(scope, id)
        self.geoip = geoip
        self.region = region
        self.licence: secretsmanager.ISecret | None = (
            imported(self, "Licence", geoip.maxmind_secret) if geoip.maxmind_secret else None
        )
        self.unit = Unit(
            name=UNIT,
            description="fetch the streamfleet geo-IP City database",
            exec_start=REFRESH_SCRIPT,
            user="root",
            service_type="oneshot",
        )

    @property
    def env(self) -> dict[str, str]:
        return {"STREAMFLEET_GEOIP_DB": self.geoip.path}

    def install(self, boot: NodeBoot) -> NodeBoot:
        g = self.geoip
        return (
            boot.add_file(
                REFRESH_SCRIPT,
                script(
                    "geoip-refresh.sh",
                    dest=g.path,
                    region=self.region,
                    source="s3" if g.s3_uri else "maxmind",
                    object_uri=g.s3_uri or "",
                    secret=g.maxmind_secret or "",
                    edition=g.edition,
                ),
            )
            .add_file(f"/etc/systemd/system/{UNIT}.timer", timer_file(g), "0644")
            .add_unit(self.unit)
            .add_commands(f"systemctl daemon-reload && systemctl enable --now {UNIT}.timer")
        )

    def grant_read(self, role: iam.IRole) -> None:
        if self.licence is not None:
            self.licence.grant_read(role)
        if self.geoip.s3_uri:
            bucket, key = s3_parts(self.geoip.s3_uri)
            role.add_to_principal_policy(
                iam.PolicyStatement(
                    actions=["s3:GetObject"],
                    resources=[
                        Stack.of(self).format_arn(
                            service="s3", region="", account="", resource=bucket, resource_name=key
                        )
                    ],
                )
            )
