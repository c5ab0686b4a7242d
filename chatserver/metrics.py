"""Prometheus metrics at /metrics: counters kept as plain integers on the hot path, exposed at scrape.

Each app has its own registry (tests run many nodes in one process); nothing here names a room, a
member or an address.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from ipaddress import ip_address
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from chatserver.addresses import IPNetwork
from chatserver.ports import ReportsReaderStats
from chatserver.transport.frames import LATENCY_BUCKETS

if TYPE_CHECKING:
    from chatserver.node import Node


class NodeCollector(Collector):
    """Reads the node's counters and registries at scrape time."""

    def __init__(self, node: Node) -> None:
        self.node = node

    def collect(self) -> Iterator[Metric]:
        node = self.node
        stats = node.stats
        yield GaugeMetricFamily(
            "chatserver_connections", "Open Socket.IO connections", len(node.registry.connections)
        )
        yield GaugeMetricFamily(
            "chatserver_rooms_held", "Rooms with a member on this node", len(node.registry.rooms)
        )
        yield GaugeMetricFamily(
            "chatserver_members_held", "Seats held by this node", len(node.registry.seats)
        )
        envelopes = CounterMetricFamily(
            "chatserver_envelopes", "Envelopes received, by outcome", labels=["outcome"]
        )
        for outcome, count in stats.envelopes.items():
            envelopes.add_metric([outcome], count)
        yield envelopes
        requests = CounterMetricFamily(
            "chatserver_requests", "Client events, by event and result", labels=["event", "result"]
        )
        for key, count in stats.requests.items():
            event, result = key.split(":", 1)
            requests.add_metric([event, result], count)
        yield requests
        yield CounterMetricFamily(
            "chatserver_deliveries", "Room events queued to local sockets", value=stats.deliveries
        )
        resumes = CounterMetricFamily(
            "chatserver_resumes", "Resumes, by outcome", labels=["outcome"]
        )
        for outcome, count in stats.resumes.items():
            resumes.add_metric([outcome], count)
        yield resumes
        refused = CounterMetricFamily(
            "chatserver_refused_input",
            "Input refused below the protocol (malformed frames, reserved names...), by reason",
            labels=["reason"],
        )
        for reason, count in node.sio.refusals.counts.items():
            refused.add_metric([reason], count)
        yield refused
        yield GaugeMetricFamily(
            "chatserver_pending_websockets",
            "Websockets open without a Socket.IO connect yet",
            len(node.sio.pending),
        )
        fanout = node.sio.eio.stats
        yield CounterMetricFamily(
            "chatserver_slow_consumers",
            "Connections closed for falling behind",
            value=fanout.slow_consumers,
        )
        yield CounterMetricFamily(
            "chatserver_send_drops",
            "Packets not written: the connection was closing, closed or over its send bound",
            value=fanout.dropped,
        )
        yield CounterMetricFamily(
            "chatserver_frames_written",
            "Broadcast frames written to local connections",
            value=fanout.written,
        )
        buckets, cumulative = [], 0
        for bound, count in zip(
            [*map(str, LATENCY_BUCKETS), "+Inf"], fanout.latency_counts, strict=True
        ):
            cumulative += count
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily(
            "chatserver_fanout_seconds",
            "Time to encode, frame and queue one broadcast for every local recipient",
            buckets=buckets,
            sum_value=fanout.latency_sum,
        )
        bus = node.bus
        reader = bus if isinstance(bus, ReportsReaderStats) else None  # memory: nothing to read
        yield CounterMetricFamily(
            "chatserver_pubsub_messages",
            "Pub/sub messages this node read from Redis",
            value=reader.messages_read if reader is not None else 0,
        )
        yield CounterMetricFamily(
            "chatserver_backend_reconnects",
            "Times the Redis listener reconnected",
            value=reader.reconnects if reader is not None else 0,
        )
        yield GaugeMetricFamily("chatserver_ready", "1 when ready", 1 if bus.healthy() else 0)


def registry_for(node: Node) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(NodeCollector(node))
    return registry


# Headers a proxy adds: a request that carries one came through the balancer, not from a scraper.
PROXY_HEADERS = ("X-Forwarded-For", "Forwarded", "X-Real-IP")


def handler(
    registry: CollectorRegistry, allowed: tuple[IPNetwork, ...]
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """/metrics for scrapers only: the TCP peer must be in `metrics_allow` (loopback by default)
    and the request must not have come through a proxy; anyone else gets a plain 404."""

    async def metrics(request: web.Request) -> web.Response:
        peer = request.remote
        try:
            allowed_peer = peer is not None and any(ip_address(peer) in n for n in allowed)
        except ValueError:
            allowed_peer = False
        if not allowed_peer or any(h in request.headers for h in PROXY_HEADERS):
            raise web.HTTPNotFound()
        response = web.Response(body=generate_latest(registry))
        response.content_type = CONTENT_TYPE_LATEST.split(";")[0]
        return response

    return metrics
