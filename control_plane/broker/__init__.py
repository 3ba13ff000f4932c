"""The broker: atomic one-user-one-GPU assignment on Redis.

Composed of one service per job over one typed store:

* `sessions.Sessions` — create, place, queue (the session API's needs);
* `instances.Instances` — register, heartbeat, client events, drain, terminate;
* `restore.Restore` — waiting users back in line after Redis lost them;
* `settlement.Settlement` — ending sessions and finishing outbox follow-ups;
* `repair.Reaper` — timeouts and leak repair;
* `views.Views` — snapshots and rows for ops, metrics and pool managers;
* `store.Store` / `reads.Reads` over `plumbing.Connection` — the only code
  that speaks Redis; `replies` and `outbox` decode what the scripts return.

`Broker` wires them and exposes their operations under one name, so callers
hold one object.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence

from control_plane.broker.instances import Instances
from control_plane.broker.plumbing import Connection, RedisClient, as_client
from control_plane.broker.reads import Reads
from control_plane.broker.repair import Reaper
from control_plane.broker.restore import Restore
from control_plane.broker.sessions import SessionMinter, Sessions
from control_plane.broker.settlement import (
    BrokerObserver,
    NoObserver,
    SecretMinter,
    Settlement,
)
from control_plane.broker.store import Store
from control_plane.broker.views import Views
from control_plane.broker_settings import BrokerSettings
from control_plane.clock import Clock, RedisClock

__all__ = ["Broker", "BrokerObserver", "RedisClient", "as_client"]


def _random_secret(session_id: str) -> str:
    return secrets.token_urlsafe(24)


class Broker:
    def __init__(
        self,
        redis: object,
        regions: Sequence[str],
        settings: BrokerSettings | None = None,
        clock: Clock | None = None,
        observer: BrokerObserver | None = None,
        mint_secret: SecretMinter | None = None,
        mint_session_secret: SessionMinter | None = None,
    ) -> None:
        """`mint_secret`: session id -> the secret its user holds (a session rebuilt
        from its agent); `mint_session_secret`: a new session's facts -> its secret.
        The service passes the keyed ones (control_plane/session_secrets.py) so a
        secret stays verifiable, and a waiting session rebuildable, when Redis
        forgets the session; the default is random (tests, benchmarks)."""
        self.regions = tuple(regions)
        self.settings = settings or BrokerSettings()
        self.clock = clock or RedisClock()
        self.redis = as_client(redis)
        self.conn = Connection(self.redis, self.settings.max_inflight)
        store = Store(self.conn, self.regions, self.settings, self.clock)
        self.reads = Reads(self.conn, self.clock)
        self.settlement = Settlement(
            store, self.reads, observer or NoObserver(), mint_secret or _random_secret
        )
        self.sessions = Sessions(
            store, self.reads, self.settlement,
            mint_session_secret or (lambda facts: _random_secret(facts.session_id)),
        )  # fmt: skip
        self.settlement.replacer = self.sessions.replace
        self.restore = Restore(store, self.reads, self.sessions)
        self.instances = Instances(store, self.settlement)
        self.reaper = Reaper(store, self.reads, self.settlement, self.sessions)
        self.views = Views(store, self.reads)
        self.store = store

        # One name per operation (bound methods keep their types for mypy).
        self.create_session = self.sessions.create_session
        self.widen_queue = self.sessions.widen_queue
        self.queue_position = self.sessions.queue_position
        self.get_session = self.sessions.get_session
        self.rebuild_session = self.restore.rebuild
        self.require_live = self.sessions.require_live
        self.end_session = self.settlement.end_session
        self.dispatch = self.settlement.dispatch
        self.register_instance = self.instances.register_instance
        self.mark_ready = self.instances.mark_ready
        self.heartbeat = self.instances.heartbeat
        self.client_event = self.instances.client_event
        self.replace_session = self.instances.replace_session
        self.drain = self.instances.drain
        self.terminate = self.instances.terminate
        self.reap = self.reaper.reap
        self.snapshot = self.views.snapshot
        self.set_constrained = self.views.set_constrained
        self.instance_details = self.views.instance_details
        self.instance_state = self.views.instance_state
        self.instance_states = self.views.instance_states
        self.instance_sessions = self.views.instance_sessions
        self.arrivals_per_min = self.views.arrivals_per_min
        self.now_ms = self.reads.now_ms
