"""The one typed configuration of a streamfleet deployment.

`app.py` builds a `DeploymentConfig` (the defaults below, or a JSON file named
with `cdk synth -c config=FILE`) and passes it to every stack; nothing else in
the CDK app reads the environment or context. Validation happens here, before
any construct exists, so a bad deployment fails at synth with a message that
names the field.

Ports and setting names are those of docs/contracts.md.
"""

from __future__ import annotations

import ipaddress
import json
import re
from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# Region names follow the control plane's rule (streamfleet.ids): a stack must
# not be deployable for a region the control plane would refuse to serve.
from streamfleet.wire import RegionName

# Ports of docs/contracts.md. The CDK app never invents another.
CONTROL_PLANE_PORT = 8080
AGENT_PORT = 8700
ROUTER_PORT = 80
TURN_PORT = 3478
TURN_RELAY_PORTS = (49152, 65535)

# CloudWatch Logs accepts only these retention periods (days).
LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557}
    | {2922, 3288, 3653}
)

# Public SSM parameters that AWS and Debian keep pointing at the current images.
DEBIAN_12_AMI_PARAMETER = "/aws/service/debian/release/12/latest/amd64"
GPU_AMI_PARAMETER = (
    "/aws/service/deeplearning/ami/x86_64/base-oss-nvidia-driver-gpu-ubuntu-24.04/latest/ami-id"
)
UBUNTU_24_04_AMI_PARAMETER = (
    "/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id"
)
_S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(\S+)$")


def s3_parts(uri: str) -> tuple[str, str]:
    """(bucket, key) of an s3://bucket/key URI."""
    match = _S3_URI.fullmatch(uri)
    if match is None:
        raise ValueError(f"{uri!r} is not an s3://bucket/key URI")
    return match.group(1), match.group(2)


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Geography(StrEnum):
    EU = "eu"
    US = "us"


class AmiSource(_Frozen):
    """Where an image comes from: explicit ids per region win over the SSM parameter.

    Pin `ids` for production (a baked image with the renderer); the parameter
    follows the publisher's latest image and is resolved at deploy time.
    """

    ssm_parameter: str
    ids: dict[str, str] = Field(default_factory=dict)
    # The image's root device: the launch template sizes and encrypts this one.
    root_device_name: str = "/dev/xvda"

    @field_validator("ids")
    @classmethod
    def _ami_ids(cls, ids: dict[str, str]) -> dict[str, str]:
        for region, ami in ids.items():
            if not ami.startswith("ami-"):
                raise ValueError(f"{region}: {ami!r} is not an AMI id")
        return ids


class WarmPool(_Frozen):
    """EC2 warm pool next to the GPU group: pre-initialised, stopped instances."""

    min_size: int = Field(default=4, ge=0)
    max_prepared_capacity: int | None = Field(default=None, ge=0)
    state: Literal["Stopped", "Running", "Hibernated"] = "Stopped"
    reuse_on_scale_in: bool = True


class GpuFleet(_Frozen):
    """The GPU Auto Scaling group of one region.

    `instance_types` is in order of preference. The group launches the first;
    the pool manager falls back to the others itself, on capacity errors, by
    pointing the group at a version of its launch template with another type
    (regional_stack/pool/asg.py). A mixed instances policy is not an option:
    AWS refuses a warm pool on such a group.
    """

    instance_types: tuple[str, ...] = ("g4dn.2xlarge", "g5.2xlarge", "g6.2xlarge")
    min_size: int = Field(default=0, ge=0)
    max_size: int = Field(default=150, ge=1)
    warm_pool: WarmPool | None = WarmPool()
    volume_gib: int = Field(default=100, ge=30)
    # STREAMFLEET_AGENT_RENDERER_COMMAND; None leaves the agent's own default.
    renderer_command: str | None = None
    # More STREAMFLEET_POOL_* settings (policy, buffer, ...), names without the prefix.
    pool_manager_settings: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _shape(self) -> GpuFleet:
        if not self.instance_types:
            raise ValueError("instance_types: at least one type")
        if self.min_size > self.max_size:
            raise ValueError("min_size > max_size")
        reserved = {"CONTROL_PLANE_URL", "ADMIN_TOKEN", "REGION", "ASG_NAME"}
        clash = reserved & {k.upper() for k in self.pool_manager_settings}
        if clash:
            raise ValueError(f"pool_manager_settings: {sorted(clash)} are set by the stack")
        return self

    @property
    def primary_type(self) -> str:
        return self.instance_types[0]

    @property
    def fallback_types(self) -> tuple[str, ...]:
        return self.instance_types[1:]


class GpuImage(_Frozen):
    """The GPU renderer image, baked by EC2 Image Builder (components/gpu_image.py).

    With this set, each regional stack builds the image in its region and the
    GPU group launches from it: NVIDIA drivers, the packaged Unreal app from S3,
    and the streamfleet agent installed offline from the deployment's wheelhouse
    (`make wheelhouse`, the one every node boots from), every dependency pinned by
    hash. Recipes are immutable: bump `version` to build a new image, deploy, then
    `streamfleet upgrade` (docs/deploy.md).
    """

    version: str = Field(default="1.0.0", pattern=r"^[0-9]+\.[0-9]+\.[0-9]+$")
    parent_ssm_parameter: str = UBUNTU_24_04_AMI_PARAMETER
    # Ubuntu's nvidia-driver-NNN-server (with its Vulkan ICD, which Unreal renders with).
    nvidia_driver: str = Field(default="570", pattern=r"^[0-9]{3}$")
    # A zip of the packaged Linux build (Unreal's "Package Project" output).
    unreal_artifact: str
    unreal_dir: str = Field(default="/opt/streamfleet/renderer", pattern=r"^/[A-Za-z0-9_./-]+$")
    build_instance_type: str = "g4dn.xlarge"
    volume_gib: int = Field(default=100, ge=30)
    # Image Builder cron for scheduled rebuilds (OS patches); None: on demand only.
    schedule: str | None = Field(default=None, pattern=r"^cron\(.+\)$")

    @field_validator("unreal_artifact")
    @classmethod
    def _artifact(cls, uri: str) -> str:
        s3_parts(uri)
        return uri


class GeoIp(_Frozen):
    """Where the control plane's City database comes from (docs/deploy.md, "Geo-IP").

    Exactly one source: `s3_uri` (an .mmdb you keep current in your bucket) or
    `maxmind_secret` (the Secrets Manager name of a JSON object
    {"account_id": "...", "license_key": "..."}: the instances download the
    edition from MaxMind). Each control-plane instance fetches it at boot and
    then on `refresh` (systemd OnCalendar), and the control plane re-reads the
    file when it changes.
    """

    s3_uri: str | None = None
    maxmind_secret: str | None = Field(default=None, pattern=r"^[A-Za-z0-9/_+=.@-]{1,512}$")
    edition: str = Field(default="GeoLite2-City", pattern=r"^[A-Za-z0-9-]*City[A-Za-z0-9-]*$")
    # MaxMind publishes GeoLite2 on Tuesdays and Fridays.
    refresh: str = Field(default="Wed,Sat *-*-* 04:00:00", pattern=r"^[A-Za-z0-9,*: -]+$")
    path: str = Field(
        default="/var/lib/streamfleet/geoip/City.mmdb", pattern=r"^/[A-Za-z0-9_./-]+\.mmdb$"
    )

    @model_validator(mode="after")
    def _one_source(self) -> GeoIp:
        if (self.s3_uri is None) == (self.maxmind_secret is None):
            raise ValueError("geoip: set exactly one of s3_uri and maxmind_secret")
        if self.s3_uri is not None:
            s3_parts(self.s3_uri)
        return self


class ServiceSize(_Frozen):
    instance_type: str = "c6i.large"
    min_size: int = Field(default=2, ge=1)
    max_size: int = Field(default=6, ge=1)

    @model_validator(mode="after")
    def _bounds(self) -> ServiceSize:
        if self.min_size > self.max_size:
            raise ValueError("min_size > max_size")
        return self


class Turn(_Frozen):
    # One coturn instance (own Auto Scaling group of one, own Elastic IP) per AZ.
    instance_type: str = "c6in.large"


class RegionConfig(_Frozen):
    name: RegionName
    geography: Geography
    lat: float
    lon: float
    availability_zones: tuple[str, ...]
    vpc_cidr: str
    gpu: GpuFleet = GpuFleet()
    router: ServiceSize = ServiceSize()
    turn: Turn = Turn()
    pool_manager_instance_type: str = "t3.small"
    nat_gateways: int = Field(default=2, ge=1)
    # AWS's public RSA-2048 certificate of this region (PEM; a bare public key also
    # does), with which the control plane checks an agent's signed instance identity
    # document: copy it from
    # https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/regions-certs.html. Without
    # one no agent of the region could register, so `cdk synth` fails with an error
    # naming the region (stacks/control_plane_stack.py).
    identity_certificate: str | None = None

    @field_validator("identity_certificate")
    @classmethod
    def _pem(cls, pem: str | None) -> str | None:
        if pem is not None and not pem.lstrip().startswith("-----BEGIN "):
            raise ValueError(
                "identity_certificate: a PEM certificate (-----BEGIN CERTIFICATE-----)"
            )
        return pem

    @model_validator(mode="after")
    def _zones(self) -> RegionConfig:
        if len(self.availability_zones) < 2:
            raise ValueError(f"{self.name}: at least two availability zones")
        for zone in self.availability_zones:
            if not zone.startswith(self.name):
                raise ValueError(f"{self.name}: zone {zone} is in another region")
        ipaddress.ip_network(self.vpc_cidr)
        return self


class Redis(_Frozen):
    node_type: str = "cache.r7g.large"
    engine_version: str = "7.1"
    # Cluster mode: shards x (1 primary + replicas); the control plane then gets
    # STREAMFLEET_REDIS_CLUSTER=true and the configuration endpoint.
    cluster_mode: bool = False
    shards: int = Field(default=2, ge=1)
    replicas_per_shard: int = Field(default=1, ge=1)
    # Not 6379: AwsSolutions-AEC5 asks for a non-default port.
    port: int = Field(default=6380, ge=1024, le=65535)
    snapshot_retention_days: int = Field(default=7, ge=1, le=35)


class ControlPlane(_Frozen):
    region: RegionName = "eu-central-1"
    availability_zones: tuple[str, ...] = ("eu-central-1a", "eu-central-1b")
    vpc_cidr: str = "10.0.0.0/16"
    nat_gateways: int = Field(default=2, ge=1)
    service: ServiceSize = ServiceSize()
    redis: Redis = Redis()
    token_signing_kid: str = "k1"  # noqa: S105 - a key id, not a key
    # STREAMFLEET_GEOIP_DB: a path baked into the image; None leaves it unset.
    geoip_db: str | None = None
    # Or fetched and refreshed on the instances (sets STREAMFLEET_GEOIP_DB to its path).
    geoip: GeoIp | None = None
    # STREAMFLEET_CORS_ORIGINS: the configurator frontend's origins.
    cors_origins: tuple[str, ...] = ()
    health_check_path: str = "/healthz"
    # Prometheus gauge the CloudWatch agent forwards; alarmed on its maximum.
    queue_depth_metric: str = "streamfleet_queue_depth"
    queue_depth_alarm_threshold: int = Field(default=50, ge=1)

    @model_validator(mode="after")
    def _zones(self) -> ControlPlane:
        if len(self.availability_zones) < 2:
            raise ValueError("control plane: at least two availability zones")
        if self.geoip_db is not None and self.geoip is not None:
            raise ValueError("control plane: geoip_db (baked) or geoip (fetched), not both")
        return self


class Dns(_Frozen):
    """Names of the public endpoints; certificates come from ACM.

    With `hosted_zone_id`, the app creates DNS-validated certificates and the
    records (api, one per region, TURN). Without it, every endpoint needs an
    entry in `certificate_arns` (domain name -> ACM ARN in that region) and the
    records are created by hand from the stack outputs.
    """

    zone_name: str = "stream.example.com"
    hosted_zone_id: str | None = "Z0000000000000EXAMPLE"
    certificate_arns: dict[str, str] = Field(default_factory=dict)

    @property
    def control_plane(self) -> str:
        return f"api.{self.zone_name}"

    def router(self, region: str) -> str:
        return f"{region}.{self.zone_name}"

    def turn(self, region: str) -> str:
        return f"turn.{region}.{self.zone_name}"


class Waf(_Frozen):
    # Requests per client IP per 5 minutes, outside the agent API.
    rate_limit: int = Field(default=1000, ge=100)
    # Agents of one region share their NAT addresses: a separate, higher limit.
    agent_rate_limit: int = Field(default=100_000, ge=100)


def _default_regions() -> tuple[RegionConfig, ...]:
    return (
        RegionConfig(
            name="eu-central-1",
            geography=Geography.EU,
            lat=50.11,
            lon=8.68,
            availability_zones=("eu-central-1a", "eu-central-1b"),
            vpc_cidr="10.10.0.0/16",
        ),
        RegionConfig(
            name="eu-west-1",
            geography=Geography.EU,
            lat=53.35,
            lon=-6.26,
            availability_zones=("eu-west-1a", "eu-west-1b"),
            vpc_cidr="10.11.0.0/16",
        ),
        RegionConfig(
            name="us-east-1",
            geography=Geography.US,
            lat=38.90,
            lon=-77.04,
            availability_zones=("us-east-1a", "us-east-1b"),
            vpc_cidr="10.20.0.0/16",
        ),
        RegionConfig(
            name="us-west-2",
            geography=Geography.US,
            lat=45.84,
            lon=-119.70,
            availability_zones=("us-west-2a", "us-west-2b"),
            vpc_cidr="10.21.0.0/16",
        ),
    )


class DeploymentConfig(_Frozen):
    name: str = Field(default="streamfleet", pattern=r"^[a-z][a-z0-9-]{2,30}$")
    # None: the account of the deploying credentials (CDK_DEFAULT_ACCOUNT).
    account: str | None = Field(default=None, pattern=r"^[0-9]{12}$")
    control_plane: ControlPlane = ControlPlane()
    regions: tuple[RegionConfig, ...] = Field(default_factory=_default_regions)
    dns: Dns = Dns()
    waf: Waf = Waf()
    base_ami: AmiSource = AmiSource(ssm_parameter=DEBIAN_12_AMI_PARAMETER)
    gpu_ami: AmiSource = AmiSource(ssm_parameter=GPU_AMI_PARAMETER, root_device_name="/dev/sda1")
    # Bake the GPU image with EC2 Image Builder in each region (then gpu_ami is not used).
    gpu_image: GpuImage | None = None
    shield_advanced: bool = False
    # Interface endpoints (Secrets Manager, SSM, logs, ...) so instance traffic
    # to AWS APIs stays off the NAT gateways; the S3 gateway endpoint is always on.
    interface_endpoints: bool = True
    log_retention_days: int = 30
    alarm_email: str | None = None

    @field_validator("log_retention_days")
    @classmethod
    def _retention(cls, days: int) -> int:
        if days not in LOG_RETENTION_DAYS:
            raise ValueError(f"CloudWatch Logs has no {days}-day retention")
        return days

    @model_validator(mode="after")
    def _consistent(self) -> DeploymentConfig:
        names = [r.name for r in self.regions]
        if len(set(names)) != len(names):
            raise ValueError("regions: a region is listed twice")
        if not self.regions:
            raise ValueError("regions: at least one regional stack")
        networks = [ipaddress.ip_network(r.vpc_cidr) for r in self.regions]
        networks.append(ipaddress.ip_network(self.control_plane.vpc_cidr))
        for i, a in enumerate(networks):
            for b in networks[i + 1 :]:
                if a.overlaps(b):
                    raise ValueError(f"VPC CIDRs {a} and {b} overlap")
        if self.dns.hosted_zone_id is None:
            wanted = [self.dns.control_plane, *(self.dns.router(n) for n in names)]
            missing = [d for d in wanted if d not in self.dns.certificate_arns]
            if missing:
                raise ValueError(f"no hosted zone and no certificate for {missing}")
        return self

    def region(self, name: str) -> RegionConfig:
        return next(r for r in self.regions if r.name == name)

    @classmethod
    def from_json_file(cls, path: Path) -> DeploymentConfig:
        return cls.model_validate(json.loads(path.read_text()))


class SecretNames:
    """Secrets Manager names, shared by the stack that creates a secret and the
    stacks (in other regions too) that read its replica by name."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix

    @property
    def token_keys(self) -> str:
        return f"{self.prefix}/token-keys"

    @property
    def turn_secret(self) -> str:
        return f"{self.prefix}/turn-secret"

    @property
    def admin_token(self) -> str:
        return f"{self.prefix}/admin-token"

    def agent_secret(self, region: str) -> str:
        return f"{self.prefix}/agent-secret/{region}"

    @property
    def agent_secrets(self) -> str:
        return f"{self.prefix}/agent-secrets"

    @property
    def agent_token_key(self) -> str:
        return f"{self.prefix}/agent-token-key"

    @property
    def redis_auth(self) -> str:
        return f"{self.prefix}/redis-auth"

    @property
    def redis_url(self) -> str:
        return f"{self.prefix}/redis-url"
