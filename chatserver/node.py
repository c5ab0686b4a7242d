"""Everything one node holds, built once by the app factory and passed to the handlers."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from chatserver.abuse import AbuseGuard
from chatserver.config import Settings
from chatserver.credentials import RevocationFile, ServerKey, revocation_path
from chatserver.gateway.state import LocalRegistry
from chatserver.ports import Clock, Denylist, Presence, RateLimiter, RoomBus, RoomStore
from chatserver.service import RoomService
from chatserver.stats import Stats
from rooms import RoomPolicy

if TYPE_CHECKING:
    from chatserver.gateway.socket_server import ChatSocketServer


class SystemClock:
    """The real wall clock."""

    def now(self) -> float:
        return time.time()


@dataclass
class Node:
    """A node's settings, seams, room service and everything it holds locally: the connection
    and seat registry, the abuse guard, the revocation file. Nothing of a node lives in a
    module-level cache."""

    settings: Settings
    clock: Clock
    store: RoomStore
    bus: RoomBus
    presence: Presence
    limiter: RateLimiter
    denylist: Denylist
    service: RoomService
    sio: ChatSocketServer
    # Opaque id of this process; directed events are routed to it by the seat's holder.
    node_id: str
    # Franking stamps are HMACs under this key; every node of a cluster must share it.
    stamp_key: bytes
    # Signs therapist credentials; `stamp_key` is derived from it (docs/moderation.md).
    server_key: ServerKey | None = None
    registry: LocalRegistry = field(default_factory=LocalRegistry)
    stats: Stats = field(default_factory=Stats)
    draining: bool = False
    # Address groups and the address and cluster-wide limits (chatserver/abuse.py).
    abuse: AbuseGuard = field(init=False)
    # The embedded revocation list next to the server key, re-read when it changes.
    revocations: RevocationFile = field(init=False)

    def __post_init__(self) -> None:
        # No server key (a node built without one): a random seed, so keys are per process.
        seed = self.server_key.seed if self.server_key is not None else secrets.token_bytes(32)
        self.abuse = AbuseGuard(self.settings, self.limiter, self.clock, seed)
        self.revocations = RevocationFile(revocation_path(self.settings))

    @property
    def policy(self) -> RoomPolicy:
        return self.service.policy
