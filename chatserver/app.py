"""The aiohttp application factory: one node, its seams, the gateway and its lifecycle."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from aiohttp import web

from chatserver import gateway, metrics, resources, static_files
from chatserver.addresses import parse_networks
from chatserver.backends.memory.bus import MemoryRoomBus
from chatserver.backends.memory.denylist import MemoryDenylist
from chatserver.backends.memory.presence import MemoryPresence
from chatserver.backends.memory.ratelimit import MemoryRateLimiter
from chatserver.backends.memory.store import MemoryRoomStore
from chatserver.backends.redis.bus import RedisRoomBus
from chatserver.backends.redis.conn import Keys, connect
from chatserver.backends.redis.denylist import RedisDenylist
from chatserver.backends.redis.presence import RedisPresence
from chatserver.backends.redis.ratelimit import RedisRateLimiter
from chatserver.backends.redis.store import RedisRoomStore
from chatserver.config import Settings
from chatserver.credentials import ServerKey, b64, key_path, load_server_key
from chatserver.gateway import lifecycle
from chatserver.gateway.socket_server import ChatSocketServer
from chatserver.node import Node, SystemClock
from chatserver.ports import (
    Clock,
    Denylist,
    NeedsStart,
    Presence,
    RateLimiter,
    RoomBus,
    RoomStore,
)
from chatserver.protocol import CloseCode
from chatserver.service import RoomService
from chatserver.transport import ChatEngineServer, client_manager
from rooms import RoomPolicy

log = logging.getLogger("chatserver.app")

NODE_KEY = web.AppKey("node", Node)
DEFAULT_WEB_DIR = Path(__file__).resolve().parent.parent / "web" / "dist"


def build_node(settings: Settings, clock: Clock | None = None) -> Node:
    """Wire the seams: Redis when a URL is given (one node of many), else in memory (alone)."""
    clock = clock or SystemClock()
    policy = RoomPolicy(
        empty_grace_s=settings.empty_grace_s,
        max_lifetime_s=settings.max_lifetime_s,
        default_capacity=settings.default_capacity,
        max_capacity=settings.max_capacity,
        session_overrun_s=settings.session_overrun_s,
    )
    node_id = secrets.token_hex(8)
    server_key = server_key_for(settings)
    store, bus, presence, limiter, denylist = _seams(settings, clock, node_id)
    origins = [o.strip() for o in settings.allowed_origins.split(",") if o.strip()]
    sio = ChatSocketServer(
        async_mode="aiohttp",
        client_manager=client_manager(settings.transport_fast_path),
        serializer="msgpack",
        transports=["websocket"],
        allow_upgrades=False,
        http_compression=False,
        max_http_buffer_size=settings.max_frame_bytes,
        ping_interval=settings.ping_interval_s,
        ping_timeout=settings.ping_timeout_s,
        cors_allowed_origins=origins or None,
        send_queue_max=settings.send_queue_max,
        direct_writes=settings.transport_fast_path,
        connect_timeout_s=settings.connect_timeout_s,
        max_pending_per_address=settings.max_pending_per_address,
        logger=False,
        engineio_logger=False,
    )
    return Node(
        settings=settings,
        clock=clock,
        store=store,
        bus=bus,
        presence=presence,
        limiter=limiter,
        denylist=denylist,
        service=RoomService(store, bus, presence, policy, clock),
        sio=sio,
        node_id=node_id,
        stamp_key=server_key.stamp_key,
        server_key=server_key,
    )


def server_key_for(settings: Settings) -> ServerKey:
    """Load the server key, creating it on first run (its path is logged, never its content)."""
    path = key_path(settings)
    existed = path.exists()
    key = load_server_key(path)
    if not existed:
        log.info("server key created", extra={"path": str(path)})
    return key


def _seams(
    settings: Settings, clock: Clock, node_id: str
) -> tuple[RoomStore, RoomBus, Presence, RateLimiter, Denylist]:
    if not settings.redis_url:
        memory_bus = MemoryRoomBus(
            clock,
            settings.buffer_ttl_s,
            settings.buffer_max_events,
            buffer_max_bytes=settings.buffer_max_bytes,
        )
        return (
            MemoryRoomStore(memory_bus),
            memory_bus,
            MemoryPresence(),
            MemoryRateLimiter(),
            MemoryDenylist(),
        )
    redis = connect(
        settings.redis_url,
        settings.redis_cluster,
        max_connections=settings.redis_max_connections,
        queue_timeout_s=settings.redis_queue_timeout_s,
    )
    keys = Keys(settings.redis_prefix)
    # Nothing of a room may outlive it: every key expires a little after the room's hard lifetime.
    keep_s = settings.max_lifetime_s + 3600
    bus = RedisRoomBus(
        redis,
        keys,
        clock,
        node_id,
        settings.buffer_ttl_s,
        settings.buffer_max_events,
        keep_s,
        buffer_max_bytes=settings.buffer_max_bytes,
    )
    return (
        RedisRoomStore(redis, keys, keep_s, bus),
        bus,
        RedisPresence(redis, keys, keep_s),
        RedisRateLimiter(redis, keys),
        RedisDenylist(redis, keys),
    )


def create_app(settings: Settings | None = None, clock: Clock | None = None) -> web.Application:
    """The node as an aiohttp application: Socket.IO at /socket.io/, health, and the web client."""
    settings = settings or Settings.from_env()
    node = build_node(settings, clock)
    app = web.Application(client_max_size=64 * 1024, middlewares=[security_headers])
    app[NODE_KEY] = node
    node.sio.attach(app)
    gateway.install(node)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get(
        "/resources.json", resources.route(settings.resources_file, settings.exit_url)
    )
    scrapers = parse_networks(settings.metrics_allow)
    app.router.add_get("/metrics", metrics.handler(metrics.registry_for(node), scrapers))
    app.router.add_get(WELL_KNOWN_THERAPISTS, therapist_keys)
    web_dir = Path(settings.web_dir) if settings.web_dir else DEFAULT_WEB_DIR
    if (web_dir / "index.html").is_file():
        # index.html uncached; /static/ from memory, precompressed, hashed names cached a year.
        exit_url = static_files.exit_url_for(settings.resources_file, settings.exit_url)
        static_files.install(app, web_dir, exit_url)
    app.cleanup_ctx.append(_lifecycle)
    app.on_shutdown.append(_drain)
    return app


# The page's code is the root of trust for its encryption: only our own scripts, styles and socket.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), interest-cohort=()",
    # Unless the handler chose otherwise: only /static/'s content-hashed files are cacheable.
    "Cache-Control": "no-store",
}


@web.middleware
async def security_headers(request: web.Request, handler: Any) -> web.StreamResponse:
    """Every HTTP answer carries the headers; the websocket upgrade passes through untouched."""
    response: web.StreamResponse = await handler(request)
    if not response.prepared:
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
    return response


WELL_KNOWN_THERAPISTS = "/.well-known/chatserver-therapists.json"


async def therapist_keys(request: web.Request) -> web.Response:
    """The public key clients verify therapist badges with, and the report reasons."""
    node = request.app[NODE_KEY]
    assert node.server_key is not None
    reasons = [r.strip() for r in node.settings.report_reasons.split(",") if r.strip()]
    return web.json_response(
        {
            "version": 1,
            "keys": [{"alg": "Ed25519", "public_key": b64(node.server_key.public)}],
            "report_reasons": reasons,
        }
    )


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def readyz(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    if node.draining:
        return web.json_response({"ok": False, "reason": "draining"}, status=503)
    if not node.bus.healthy():
        return web.json_response({"ok": False, "reason": "backend unavailable"}, status=503)
    return web.json_response({"ok": True})


async def _lifecycle(app: web.Application) -> AsyncIterator[None]:
    node = app[NODE_KEY]
    if isinstance(node.bus, NeedsStart):
        await node.bus.start()
    sweeper = asyncio.create_task(lifecycle.sweep_forever(node))
    log.info("node started", extra={"backend": "redis" if node.settings.redis_url else "memory"})
    yield
    sweeper.cancel()
    # A Redis call that swallows the cancellation must not hold the shutdown hostage (`wait_for`
    # would wait on it again after its timeout; `asyncio.wait` does not).
    await asyncio.wait({sweeper}, timeout=2.0)
    await node.bus.close()


async def _drain(app: web.Application) -> None:
    """Stop taking requests and tell every client to reconnect (elsewhere), within a bound."""
    node = app[NODE_KEY]
    node.draining = True
    eio: ChatEngineServer = node.sio.eio
    closes = [
        asyncio.ensure_future(eio.close_socket(eio_sid, CloseCode.SHUTDOWN))
        for eio_sid in list(eio.sockets)
    ]
    if closes:
        # Past the bound, whatever is left is cut when the process exits.
        await asyncio.wait(closes, timeout=node.settings.shutdown_grace_s)
    log.info("drained", extra={"connections": len(closes)})
