"""The benchmarks still run, briefly, against the real stack: attested agents
(moto + the simulated IMDS signer), a `streamfleet control-plane` process,
Redis. Short versions of `make bench-fleet`, `make bench-api` and `make
bench-queue`; the numbers
are not asserted (benchmarks, not timed tests), what they count is."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.slow


def run_bench(script: str, *args: str, timeout: float) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, str(ROOT / "bench" / script), *args],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    last = done.stdout.strip().splitlines()[-1]
    result: dict[str, Any] = json.loads(last)
    return result


@pytest.mark.parametrize("redis", ["single", "cluster"])
def test_fleet_bench_short_run_counts_attested_heartbeats_and_assignments(redis: str) -> None:
    out = run_bench(
        "fleet.py", "--sizes", "100", "--seconds", "5", "--create-rate", "10",
        "--redis", redis, timeout=240,
    )  # fmt: skip
    assert out["bench"] == "fleet"
    [row] = out["sizes"]
    assert row["instances"] == 100
    assert row["errors"] == 0, row
    assert row["event_loop"] == "uvloop"
    # 100 agents every 5 s for 5 s: about 100 heartbeats, each with its own agent token.
    assert 60 <= row["heartbeats"] <= 140, row
    assert row["creates"] == 50
    assert row["creates_assigned"] + row["creates_queued"] == row["creates"]
    assert row["creates_assigned"] == 50, "a pool of 100 fresh instances queues nobody"
    assert row["background_passes"] >= 2 and row["background_pass_max_ms"] > 0
    for key in ("heartbeat_p99_ms", "create_p99_ms", "control_plane_cpu_pct", "redis_cpu_pct",
                "generator_cpu_pct", "generator_loop_lag_p99_ms"):  # fmt: skip
        assert row[key] >= 0
    if redis == "cluster":  # each of the 3 shards measured; the region's slot on one
        shards = row["redis_shard_cpu_pct"]
        assert len(shards) == 3 and row["busiest_shard_cpu_pct"] == max(shards.values())
        assert row["busiest_shard_cpu_pct"] > 0


def test_api_bench_short_run_tells_assigned_from_queued() -> None:
    out = run_bench("api.py", "--seconds", "2", "--instances", "200", timeout=300)
    assert out["bench"] == "api"
    assert out["event_loop"] == "uvloop"
    assert out["errors"] == 0 and out["agent_errors"] == 0, out
    assert out["creates_assigned"] > 0
    # Only assigned pairs count: never more than the creates that were assigned.
    assert 0 < out["assigned_pairs"] <= out["creates_assigned"]
    assert out["ratio_to_noop"] > 0 and out["noop_per_s"] > 0
    assert out["heartbeats_per_s"] > 0


def test_broker_bench_short_run_counts_its_redis_calls() -> None:
    out = run_bench(
        "broker.py", "--callers", "4", "--seconds", "1", "--baseline-requests", "2000",
        timeout=120,
    )  # fmt: skip
    assert out["bench"] == "broker" and out["assign_end_per_s"] > 0
    # Counted, not written down: create 2 (region_place, session_create),
    # end 2 (session_end, region_release), the agent's ready report 1.
    assert out["redis_calls_per_cycle"] == 5.0, out
    # The client's own ceiling, measured in the same run.
    assert out["client_evalsha_per_s"] > 0
    ceiling = out["client_evalsha_per_s"] / 5.0 / out["redis_evalsha_per_s"]
    assert out["ratio_ceiling_for_the_calls"] == round(ceiling, 4)


def test_queue_bench_short_run_streams_every_waiting_client() -> None:
    out = run_bench("queue_feed.py", "--clients", "60", "--seconds", "2", timeout=240)
    assert out["bench"] == "queue_feed"
    assert out["streams"] == 60 - out["baseline_moving"]["heads_left"]  # those left meanwhile
    moving = out["moving"]
    assert moving["heads_left"] >= 2
    # The head left each tick: every stream behind it was told its new place.
    assert moving["events_per_s"] > 0 and out["idle"]["redis_calls_per_s"] > 0
