"""The asyncio Python client: one Socket.IO connection, any number of joined rooms.

```python
async with ChatClient("http://127.0.0.1:8080") as client:
    created = await client.create_room()            # a private peer room
    room = await client.join(created.link, nickname="River")
    await room.send("hello")
    async for event in room.events():               # Message | MemberJoined | MemberLeft | ...
        ...
```

The server relays ciphertext only. Each room has its own identity and `RoomCrypto`; the client
applies the room's ordered pushes strictly in `seq` order, distributes sender keys before the
envelopes they open, and resumes its seats after a dropped connection (rejoining with a fresh
identity when the seat is gone). Plaintext, keys and tokens are never logged.

Layout (one concern per module; this package re-exports the public names):
- `errors`: ChatError, ConnectionLost, and an ack read into a result or an error;
- `events`: the dataclasses handed to the application (room events, call results);
- `common`: limits, sentinels and helpers shared by the modules below;
- `ports`: `RoomHost`, what a room needs of its connection (nothing imports `connection` back);
- `connection`: `ChatClient`, the Socket.IO connection, its calls and its reconnection;
- `waiting`: `Waiting`, a place in a session's lobby;
- `room`: `Room`, one joined room (session state, join and resume, ordered pushes, keys), with
  the mixins `room_controls` (moderation, lobby, reports, Q&A calls) and `room_members`
  (admission of members, trust in their roles).
"""

from __future__ import annotations

from chatserver.client.common import _Closed as _Closed  # the event stream's end (tests read it)
from chatserver.client.common import authority, question_info, rules_text
from chatserver.client.connection import ChatClient
from chatserver.client.errors import ChatError, ConnectionLost
from chatserver.client.events import (
    CreatedRoom,
    DecryptFailed,
    Evidence,
    KeyRejected,
    LobbyUpdate,
    MemberInfo,
    MemberJoined,
    MemberLeft,
    MemberUpdated,
    Message,
    MessageHidden,
    PinChanged,
    PinRemoved,
    Question,
    Reconnected,
    ReportReceived,
    RoomEnded,
    RoomEvent,
    RoomUpdated,
    Sent,
    SessionUpdated,
    Typing,
)
from chatserver.client.room import Room
from chatserver.client.waiting import Waiting
from chatserver.links import parse_link

__all__ = [
    "ChatClient",
    "ChatError",
    "ConnectionLost",
    "CreatedRoom",
    "DecryptFailed",
    "Evidence",
    "KeyRejected",
    "LobbyUpdate",
    "MemberInfo",
    "MemberJoined",
    "MemberLeft",
    "MemberUpdated",
    "Message",
    "MessageHidden",
    "PinChanged",
    "PinRemoved",
    "Question",
    "Reconnected",
    "ReportReceived",
    "Room",
    "RoomEnded",
    "RoomEvent",
    "RoomUpdated",
    "Sent",
    "SessionUpdated",
    "Typing",
    "Waiting",
    "authority",
    "parse_link",
    "question_info",
    "rules_text",
]
