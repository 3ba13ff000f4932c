"""The fleet simulator: each instance moto runs becomes a real agent process.

moto's instances have no operating system; here an "instance" is an agent
(plus the renderer stub it supervises) bound to the private IP moto gave it,
a loopback address of the region's /16 (the local VPCs are loopback ranges).
Its identity document is signed as the cloud would and served by the
simulated IMDS; its registration nonce lives in an owner-only file, so a
restarted agent registers again as the same instance. When the Auto Scaling
group no longer lists an instance (the pool manager or a scale-in terminated
it), its agent is stopped.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
from dataclasses import dataclass, field

from simulators.imds import IdentitySigner, LocalImds
from simulators.local_aws import aws_client, fake_aws_environment
from simulators.local_stack.failure import ChildFailed
from simulators.local_stack.plan import RegionPlan, StackPlan
from streamfleet.localproc import ManagedProcess

log = logging.getLogger("streamfleet.up.fleet")
GROUP = "streamfleet-gpu"
MAX_RESTARTS = 5


@dataclass
class Instance:
    region: str
    instance_id: str
    private_ip: str
    process: ManagedProcess
    restarts: int = 0


@dataclass
class Fleet:
    plan: StackPlan
    moto_url: str
    signer: IdentitySigner
    imds: LocalImds | None = None
    instances: dict[str, Instance] = field(default_factory=dict)
    # False while the stack starts: an agent that exits then (e.g. its address is
    # taken) fails `up` at once instead of being restarted into the same error.
    restart_crashed: bool = False

    def _in_service(self, region: str) -> dict[str, str]:
        """Instance id -> the private IP moto gave it, for the group's live instances."""
        autoscaling = aws_client("autoscaling", region, self.moto_url)
        groups = autoscaling.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])[
            "AutoScalingGroups"
        ]
        ids = [
            i["InstanceId"]
            for g in groups
            for i in g.get("Instances", [])
            if i.get("LifecycleState") in ("InService", "Pending")
        ]
        if not ids:
            return {}
        ec2 = aws_client("ec2", region, self.moto_url)
        reservations = ec2.describe_instances(InstanceIds=ids)["Reservations"]
        return {
            inst["InstanceId"]: inst["PrivateIpAddress"]
            for r in reservations
            for inst in r["Instances"]
        }

    def _agent_env(self, region: RegionPlan, instance_id: str, ip: str) -> dict[str, str]:
        p = self.plan
        env = {**os.environ, **fake_aws_environment()}
        env.update(
            {
                "STREAMFLEET_AGENT_CONTROL_PLANE_URL": p.control_plane_url,
                "STREAMFLEET_AGENT_REGION": region.name,
                "STREAMFLEET_AGENT_SECRET": p.agent_secrets[region.name],
                "STREAMFLEET_AGENT_INSTANCE_ID": instance_id,
                "STREAMFLEET_AGENT_IMDS_URL": self.imds.url_for(instance_id) if self.imds else "",
                "STREAMFLEET_AGENT_NONCE_FILE": str(
                    self.plan.workdir / "agents" / f"{instance_id}.nonce"
                ),
                "STREAMFLEET_AGENT_PRIVATE_IP": ip,
                "STREAMFLEET_AGENT_PORT": str(p.agent_port),
                "STREAMFLEET_AGENT_METRICS_PORT": str(p.agent_metrics_port),
                "STREAMFLEET_AGENT_STREAMER_PORT": str(p.streamer_port),
                "STREAMFLEET_AGENT_TOKEN_KEYS": json.dumps({"k1": p.token_key}),
                "STREAMFLEET_AGENT_TURN_URIS": json.dumps(
                    [f"turn:127.0.0.1:{region.turn_port}?transport=udp"]
                ),
                "STREAMFLEET_AGENT_TURN_SECRET": p.turn_secret,
                "STREAMFLEET_AGENT_ICE_TRANSPORT_POLICY": "relay",
                # Each instance's renderer talks to its own agent on its own address.
                "STREAMFLEET_AGENT_STREAMER_HOST": ip,
            }
        )
        return env

    def _start_agent(self, region: RegionPlan, instance_id: str, ip: str) -> ManagedProcess:
        return ManagedProcess(
            name=f"agent:{region.name}/{instance_id}",
            argv=[sys.executable, "-m", "streamfleet.cli", "agent"],
            log_path=self.plan.workdir / "agents" / f"{region.name}-{instance_id}.log",
            env=self._agent_env(region, instance_id, ip),
        ).start()

    async def sync(self) -> list[str]:
        """Start agents for new instances, stop those of vanished ones; returns what changed."""
        changes = []
        for region in self.plan.regions:
            try:
                wanted = await asyncio.to_thread(self._in_service, region.name)
            except Exception as exc:  # moto briefly busy: try again next pass
                log.warning("listing %s instances failed: %s", region.name, exc)
                continue
            mine = {iid for iid, inst in self.instances.items() if inst.region == region.name}
            for iid in sorted(set(wanted) - mine):
                ip = wanted[iid]
                # What the cloud signs at launch: the instance's identity document.
                self.signer.document(iid, region.name, ip)
                proc = await asyncio.to_thread(self._start_agent, region, iid, ip)
                self.instances[iid] = Instance(region.name, iid, ip, proc)
                changes.append(f"{region.name}: instance {iid} running as agent on {ip}")
            for iid in sorted(mine - set(wanted)):
                inst = self.instances.pop(iid)
                await asyncio.to_thread(inst.process.stop)
                changes.append(f"{region.name}: instance {iid} terminated, agent stopped")
            for inst in self.instances.values():
                if inst.region != region.name or inst.process.alive():
                    continue
                proc = inst.process
                if not self.restart_crashed:
                    code = proc.popen.returncode if proc.popen else None
                    raise ChildFailed(proc.name, code, str(proc.log_path), proc.log_tail())
                if inst.restarts == MAX_RESTARTS:
                    inst.restarts += 1  # say it once
                    changes.append(
                        f"{region.name}: agent {inst.instance_id} crashed {MAX_RESTARTS + 1} times; "
                        f"left stopped. Last lines of {proc.log_path}:\n{proc.log_tail(10)}"
                    )
                if inst.restarts < MAX_RESTARTS:
                    # A crashed agent is a crashed instance OS: bring it back, as EC2 would reboot.
                    inst.restarts += 1
                    inst.process = await asyncio.to_thread(
                        self._start_agent, region, inst.instance_id, inst.private_ip
                    )
                    changes.append(f"{region.name}: agent {inst.instance_id} restarted")
        return changes

    def stop_all(self) -> None:
        for inst in self.instances.values():
            inst.process.stop()
        self.instances.clear()

    def pids(self) -> list[int]:
        return [i.process.pid for i in self.instances.values() if i.process.alive()]
