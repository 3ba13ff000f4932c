"""A Prometheus exporter for coturn, reading coturn's own log.

Why a log reader: coturn 4.6 can export Prometheus metrics itself
(`--prometheus`), but only when built with libprom, and Debian 12's build is
not (`turnserver: unrecognized option '--prometheus'`). Its telnet CLI needs a
password and prints tables meant for people. Its log, with `-v`, has one line
per allocation event, stable since 4.x:

    session 000000000000000001: new, realm=<r>, username=<1796207335:sid>, lifetime=600
    session 000000000000000001: realm <r> user <u>: incoming packet message processed, error 401: Unauthorized
    session 000000000000000001: usage: realm=<r>, username=<u>, rp=10, rb=1116, sp=10, sb=916
    session 000000000000000001: closed (2nd stage), user <u> realm <r> origin <>, ..., reason: allocation timeout

(a 401 for user `<>` is the normal first round of the long-term credential
handshake; a 401 for a named user is a refused credential). No username or
address reaches a metric label: usernames carry session ids, and labels must
stay bounded.

Run next to coturn: `python -m regional_stack.coturn.exporter --log FILE
--listen 127.0.0.1:PORT --turn-port 3478`.
"""

from __future__ import annotations

import argparse
import contextlib
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

_NEW = re.compile(r"session \d+: new, realm=<")
_CLOSED = re.compile(r"session \d+: closed \(2nd stage\)")
_AUTH_FAILED = re.compile(r"session \d+: realm <[^>]*> user <[^>]+>: .* error 401")
MAX_READ_BYTES = 4 << 20  # per poll, so a huge backlog is read in bounded steps
_USAGE = re.compile(r"session \d+: usage: .*?rp=(\d+), rb=(\d+), sp=(\d+), sb=(\d+)")


@dataclass
class TurnStats:
    """Totals since the exporter started reading the log (pure; fed line by line)."""

    allocations: int = 0
    closed: int = 0
    auth_failures: int = 0
    received_packets: int = 0
    received_bytes: int = 0
    sent_packets: int = 0
    sent_bytes: int = 0
    lines: int = 0

    def feed(self, line: str) -> None:
        self.lines += 1
        if _NEW.search(line):
            self.allocations += 1
        elif _CLOSED.search(line):
            self.closed += 1
        elif _AUTH_FAILED.search(line):
            self.auth_failures += 1
        else:
            usage = _USAGE.search(line)
            if usage:
                rp, rb, sp, sb = (int(g) for g in usage.groups())
                self.received_packets += rp
                self.received_bytes += rb
                self.sent_packets += sp
                self.sent_bytes += sb

    @property
    def active(self) -> int:
        return max(0, self.allocations - self.closed)


class LogTail:
    """Follows a growing log file; starts over when it shrinks (rotated or truncated)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._partial = b""

    def read_lines(self) -> list[str]:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if size < self._offset:
            self._offset, self._partial = 0, b""
        if size == self._offset:
            return []
        with self.path.open("rb") as f:
            f.seek(self._offset)
            data = f.read(min(size - self._offset, MAX_READ_BYTES))
        self._offset += len(data)
        chunks = (self._partial + data).split(b"\n")
        self._partial = chunks.pop()  # an unfinished last line waits for its end
        return [c.decode("utf-8", "replace") for c in chunks]


class TurnCollector(Collector):
    def __init__(self, stats: TurnStats, turn_port: int | None) -> None:
        self.stats = stats
        self.turn_port = turn_port

    def collect(self) -> Iterator[Metric]:
        s = self.stats

        def counter(name: str, doc: str, value: int) -> CounterMetricFamily:
            family = CounterMetricFamily(name, doc)
            family.add_metric([], float(value))
            return family

        yield counter("streamfleet_turn_allocations", "TURN allocations created", s.allocations)
        yield counter("streamfleet_turn_allocations_closed", "TURN allocations closed", s.closed)
        yield counter(
            "streamfleet_turn_auth_failures",
            "Requests refused 401 for a named user (bad or expired credential)",
            s.auth_failures,
        )
        yield counter(
            "streamfleet_turn_received_bytes", "Bytes received from clients (closed allocations)",
            s.received_bytes,
        )  # fmt: skip
        yield counter(
            "streamfleet_turn_sent_bytes", "Bytes sent to clients (closed allocations)",
            s.sent_bytes,
        )  # fmt: skip
        yield counter(
            "streamfleet_turn_exporter_log_lines", "coturn log lines the exporter read", s.lines
        )
        yield GaugeMetricFamily(
            "streamfleet_turn_allocations_active", "TURN allocations open now", value=s.active
        )
        if self.turn_port is not None:
            yield GaugeMetricFamily(
                "streamfleet_turn_up",
                "1 when coturn accepts a TCP connection on its listening port",
                value=1.0 if _tcp_open("127.0.0.1", self.turn_port) else 0.0,
            )


def _tcp_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def follow(tail: LogTail, stats: TurnStats, stop: threading.Event, interval_s: float) -> None:
    while not stop.is_set():
        for line in tail.read_lines():
            stats.feed(line)
        stop.wait(interval_s)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Prometheus exporter for coturn (reads its log)")
    parser.add_argument(
        "--log", type=Path, required=True, help="coturn's log file (run it with -v)"
    )
    parser.add_argument("--listen", default="127.0.0.1:9641", help="HOST:PORT for /metrics")
    parser.add_argument("--turn-port", type=int, help="coturn's port, for streamfleet_turn_up")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between log reads")
    args = parser.parse_args(argv)
    host, _, port = args.listen.rpartition(":")
    stats = TurnStats()
    registry = CollectorRegistry()
    registry.register(TurnCollector(stats, args.turn_port))
    start_http_server(int(port), addr=host, registry=registry)
    stop = threading.Event()
    with contextlib.suppress(KeyboardInterrupt):
        follow(LogTail(args.log), stats, stop, args.interval)
    return 0


if __name__ == "__main__":  # pragma: no cover
    import signal
    import sys

    # SIGTERM (how the launcher stops children) ends the loop like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    sys.exit(main())
