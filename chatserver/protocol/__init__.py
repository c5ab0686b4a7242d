"""The wire protocol in one place (docs/protocol.md documents every name; tests/test_protocol_docs.py
keeps the two in step):

- `inbound`: event names and payload schemas with their size limits, and their parsing;
- `pushes`: push names and one Struct per push;
- `errors`: the one catalogue of refusal codes, the close codes, the ack shapes;
- `views`: the member and room views; `ids`: ids on the wire;
- `core_events`: the rooms core's events as pushes.
"""

from chatserver.protocol.errors import (
    CATALOGUE,
    GATEWAY_ERRORS,
    CloseCode,
    ErrorCode,
    ProtocolError,
    ok,
    with_rules,
)
from chatserver.protocol.inbound import *  # noqa: F403 (the payload schemas, by name)
from chatserver.protocol.inbound import SCHEMAS, Event, Payload, parse
from chatserver.protocol.pushes import PUSHES, Push, PushBody, WireEvent, to_wire

__all__ = [
    "CATALOGUE",
    "GATEWAY_ERRORS",
    "PUSHES",
    "SCHEMAS",
    "CloseCode",
    "ErrorCode",
    "Event",
    "Payload",
    "ProtocolError",
    "Push",
    "PushBody",
    "WireEvent",
    "ok",
    "parse",
    "to_wire",
    "with_rules",
]
