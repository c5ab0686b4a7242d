"""Settings for a chatserver node, from defaults, `CHATSERVER_*` environment variables and flags."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

ENV_PREFIX = "CHATSERVER_"


@dataclass(frozen=True)
class Settings:
    """Every tunable of a node; each field can be set as `CHATSERVER_<FIELD>` in the environment."""

    host: str = "127.0.0.1"
    port: int = 8080
    redis_url: str | None = None
    redis_cluster: bool = False
    # Every Redis key and channel starts with this (several deployments can share one Redis).
    redis_prefix: str = "cs"
    # Redis commands one node has in flight at once; more wait (up to the queue timeout) for a
    # connection rather than fail (see chatserver/backends/redis/conn.py).
    redis_max_connections: int = 64
    redis_queue_timeout_s: float = 5.0
    log_level: str = "info"
    # Where the built web client lives; served at / when present.
    web_dir: str = ""
    # Origins allowed to open a websocket; empty means same-origin only (non-browser clients
    # send no Origin and are always allowed).
    allowed_origins: str = ""
    # Transport limits.
    max_frame_bytes: int = 80 * 1024
    send_queue_max: int = 512
    # The transport's fast path (chatserver/transport/engineio_fastpath.py): broadcasts encoded
    # and framed once, frames written straight to each connection, a bound on unsent bytes, close
    # codes. Off, python-socketio's and engine.io's stock send path (one encoding, one queued
    # packet and a writer task per member; no send bound): only to measure what the fast path
    # buys (the CI perf guard) or to rule it out when diagnosing, never to serve people.
    transport_fast_path: bool = True
    ping_interval_s: float = 20.0
    ping_timeout_s: float = 20.0
    # Deadlines before a connection is a Socket.IO client: its HTTP request line and headers (and
    # an idle keep-alive), then the Socket.IO connect packet once the websocket is open; and how
    # many websockets one address (one IPv6 /64) may hold open before they send that packet.
    header_timeout_s: float = 10.0
    connect_timeout_s: float = 10.0
    max_pending_per_address: int = 20
    # Per-connection token buckets.
    msg_rate_per_s: float = 5.0
    msg_burst: int = 20
    typing_rate_per_s: float = 2.0
    typing_burst: int = 5
    create_rate_per_s: float = 0.1
    create_burst: int = 5
    join_rate_per_s: float = 1.0
    join_burst: int = 10
    control_rate_per_s: float = 2.0
    control_burst: int = 20
    rooms_per_connection: int = 8
    # Abuse limits (chatserver/abuse.py), cluster-wide through the RateLimiter seam; a rate of 0
    # turns a limit off. Addresses are only ever used as a salted hash (daily salt, memory only).
    # X-Forwarded-For is read only from these proxies (comma-separated addresses or CIDRs).
    trusted_proxies: str = ""
    # Not limited per address (a proxy on the same host that is not listed as trusted).
    address_limit_exempt: str = "127.0.0.1/32,::1/128"
    # Who may read /metrics: the TCP peer must be in this list (and the request not proxied).
    metrics_allow: str = "127.0.0.1/32,::1/128"
    address_join_rate_per_s: float = 0.5
    address_join_burst: int = 30
    address_create_rate_per_s: float = 0.02
    address_create_burst: int = 10
    cluster_create_rate_per_s: float = 5.0
    cluster_create_burst: int = 200
    # Messages per room, all members together; 0 means 10 x the per-member message bucket.
    room_msg_rate_per_s: float = 0.0
    room_msg_burst: int = 0
    # Safety features of the web client: the operator's crisis resources (a JSON file, served at
    # /resources.json; empty: the built-in list) and the neutral page "Leave quickly" goes to.
    resources_file: str = ""
    exit_url: str = "https://www.bbc.co.uk/weather"
    # Room lifecycle.
    empty_grace_s: float = 600.0
    max_lifetime_s: float = 86400.0
    # A session with a duration ends by itself this long after its planned end.
    session_overrun_s: float = 600.0
    default_capacity: int = 50
    max_capacity: int = 500
    sweep_interval_s: float = 1.0
    # Recovery buffer: ciphertext kept for resume, then dropped.
    buffer_ttl_s: float = 120.0
    buffer_max_events: int = 1000
    # ... and at most this many bytes of encoded events per room (large envelopes fill it first).
    buffer_max_bytes: int = 8 * 1024 * 1024
    # One room.resume or room.catchup reply carries at most this many missed events, of at most
    # this many encoded bytes (plus one event: a page always holds one); the rest is paged.
    resume_page_events: int = 200
    resume_page_bytes: int = 1024 * 1024
    # A disconnected member keeps its seat this long, so it can resume without an epoch bump.
    resume_grace_s: float = 20.0
    # A seat whose node stops touching it (the node died) lapses after this; nodes touch their
    # connected seats every heartbeat.
    presence_ttl_s: float = 30.0
    heartbeat_interval_s: float = 5.0
    shutdown_grace_s: float = 5.0
    # The server's Ed25519 key (signs therapist credentials; the franking stamp key derives from
    # it). Every node of a cluster must load the same file. Default: <state_dir>/server.key, with
    # state_dir defaulting to $XDG_STATE_HOME/chatserver (~/.local/state/chatserver).
    state_dir: str = ""
    key_file: str = ""
    # Reasons a member may pick when reporting a message (comma-separated).
    report_reasons: str = "harassment,hate,self-harm risk,spam,sexual content,privacy,other"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Defaults, then the environment, then explicit overrides (CLI flags) that are not None."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for field in fields(cls):
            raw = env.get(ENV_PREFIX + field.name.upper())
            if raw is not None:
                values[field.name] = _coerce(field.name, str(field.type), raw)
        settings = cls(**values)
        return replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def _coerce(name: str, type_name: str, raw: str) -> Any:
    try:
        if type_name == "int":
            return int(raw)
        if type_name == "float":
            return float(raw)
    except ValueError as exc:
        raise ValueError(f"{ENV_PREFIX}{name.upper()} must be a {type_name}") from exc
    if type_name == "bool":
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if type_name == "str | None":
        return raw or None
    return raw
