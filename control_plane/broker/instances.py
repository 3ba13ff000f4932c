"""What agents, ops and the cloud do to instances: register, heartbeat, the
player's connects and drops, drain, terminate."""

from __future__ import annotations

import contextlib
import json

from control_plane.broker.outbox import OutboxEntry, RebuildEntry
from control_plane.broker.settlement import Settlement
from control_plane.broker.store import AgentEnded, Served, Store
from control_plane.domain import (
    HeartbeatReply,
    InvalidArgument,
    NotServed,
    StaleEpoch,
    UnknownInstance,
    UnknownSession,
    check_instance_id,
)
from streamfleet.ids import is_canonical_ipv4, is_session_id
from streamfleet.lifecycle import EndReason, InstanceState, SessionState


class Instances:
    def __init__(self, store: Store, settlement: Settlement) -> None:
        self.store = store
        self.settlement = settlement

    async def register_instance(
        self,
        region: str,
        instance_id: str,
        private_ip: str,
        *,
        instance_type: str = "",
        version: str = "",
        ready: bool = False,
        nonce_digest: str = "",
        max_epoch: int = 0,
        served: Served | None = None,
    ) -> InstanceState:
        """`nonce_digest`: bound at the first registration, required at every later one.
        `max_epoch`: the highest epoch the agent was assigned (the next one is above it);
        `served`: the session the agent still serves, rebuilt if Redis lost it."""
        check_instance_id(instance_id)
        if not is_canonical_ipv4(private_ip):
            raise InvalidArgument("private_ip must be a dotted quad", field="private_ip")
        info = json.dumps({"instance_type": instance_type, "version": version})
        got = await self.store.register(
            region, instance_id, private_ip, info, ready=ready, nonce_digest=nonce_digest,
            max_epoch=max_epoch, served=served,
        )  # fmt: skip
        return await self._settled_state(region, instance_id, got.entry) or got.state

    async def mark_ready(self, region: str, instance_id: str) -> HeartbeatReply:
        """The agent reset its renderer: booting/recycling -> ready."""
        return await self.heartbeat(region, instance_id, InstanceState.READY)

    async def heartbeat(
        self,
        region: str,
        instance_id: str,
        reported: InstanceState,
        session_id: str | None = None,
        epoch: int | None = None,
        max_epoch: int = 0,
        ended: AgentEnded | None = None,
    ) -> HeartbeatReply:
        """`ended`: the session the agent last ended itself (its event says so too;
        this carries it when the event was lost, and tells a session the agent
        ended from one it lost, which is re-placed)."""
        check_instance_id(instance_id)
        got = await self.store.heartbeat(
            region, instance_id, reported, session_id, epoch, max_epoch, ended
        )
        if got is None:
            raise UnknownInstance(f"instance {instance_id} must register", field="instance_id")
        if ended is not None and (got.session_id, got.epoch) == ended[:2]:
            # Still ours here: the agent's end report never arrived. It is
            # applied as the event would be, then the heartbeat answered afresh.
            await self.settlement.settle(region, [got.requeued, got.entry])
            await self._apply_agent_end(region, instance_id, ended)
            got = await self.store.heartbeat(
                region, instance_id, reported, session_id, epoch, max_epoch, ended
            )
            if got is None:
                raise UnknownInstance(f"instance {instance_id} must register",
                                      field="instance_id")  # fmt: skip
        await self.settlement.settle(region, [got.requeued])
        after = await self._settled_state(region, instance_id, got.entry)
        if after is not None and after is not got.state:
            # The session could not be rebuilt (it ended meanwhile, or its
            # client holds another): the instance was handed back; so is the agent.
            return HeartbeatReply(
                state=after, session_id=None, epoch=got.epoch, claim_deadline_ms=None,
                commands=(*[c for c in got.commands if c != "end_session"], "end_session"),
            )  # fmt: skip
        return HeartbeatReply(
            state=got.state,
            session_id=got.session_id,
            epoch=got.epoch,
            claim_deadline_ms=got.claim_deadline_ms,
            commands=got.commands,
        )

    async def _apply_agent_end(self, region: str, instance_id: str, ended: AgentEnded) -> None:
        """An agent's end of its session, as its event would apply it (idempotent)."""
        sid, epoch, reason = ended
        with contextlib.suppress(StaleEpoch, UnknownSession, NotServed):
            if reason is EndReason.INSTANCE_LOST:  # its renderer crashed: re-place
                await self.replace_session(region, instance_id, sid, epoch)
            else:
                await self.settlement.end_session(
                    sid, reason, epoch=epoch, served_by=(region, instance_id)
                )

    async def _settled_state(
        self, region: str, instance_id: str, entry: OutboxEntry | None
    ) -> InstanceState | None:
        """Finish the script's follow-up; after a rebuild, the instance's state then
        (None otherwise: the script's answer stands)."""
        await self.settlement.settle(region, [entry])
        if not isinstance(entry, RebuildEntry):
            return None
        return await self.settlement.reads.instance_state(region, instance_id)

    async def client_event(
        self, region: str, instance_id: str, session_id: str, epoch: int, *, connected: bool
    ) -> SessionState:
        """The agent saw the player connect (or reconnect) or drop."""
        got = await self.store.client(region, instance_id, session_id, epoch, connected=connected)
        if not got.ok:
            raise StaleEpoch(f"{instance_id} no longer serves {session_id} at epoch {epoch}")
        if connected:
            done = await self.store.connected(session_id, epoch)
            if not done.ok:
                raise StaleEpoch(f"session {session_id}: {done.why}")
        return SessionState.CONNECTED

    async def replace_session(
        self, region: str, instance_id: str, session_id: str, epoch: int
    ) -> bool:
        """The instance can no longer serve the session (its renderer crashed):
        re-place the session elsewhere, or here once the renderer is back.
        False when that is done already (a repeated report, or the session
        ended); NotServed when the session is not this instance's, StaleEpoch
        when it is at another epoch here (as for an agent's end report)."""
        check_instance_id(instance_id)
        got = await self.store.replace(region, instance_id, session_id, epoch)
        if got.ok:
            await self.settlement.settle(region, [got.entry])
            return True
        s = await self.settlement.reads.session(session_id) if is_session_id(session_id) else None
        if s is None:
            raise UnknownSession(f"unknown session {session_id!r}", field="session_id")
        if s.state is SessionState.ENDED:
            return False
        if s.requeued_from == f"{instance_id}:{epoch}":
            return False  # this very report was acted on: re-placed from here
        if (s.region, s.instance_id) != (region, instance_id):
            raise NotServed(f"this instance does not serve session {session_id}",
                            field="session_id")  # fmt: skip
        raise StaleEpoch(f"session {session_id} is not at epoch {epoch}", field="epoch")

    async def drain(self, region: str, instance_id: str, *, force: bool = False) -> InstanceState:
        got = await self.store.drain(region, instance_id, force=force)
        if not got.ok:
            raise UnknownInstance(f"unknown instance {instance_id}", field="instance_id")
        await self.settlement.settle(region, [got.entry])
        return InstanceState(got.state)

    async def terminate(self, region: str, instance_id: str) -> None:
        got = await self.store.terminate(region, instance_id)
        if not got.ok:
            raise UnknownInstance(f"unknown instance {instance_id}", field="instance_id")
        await self.settlement.settle(region, [got.entry])
