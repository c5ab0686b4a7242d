"""The plaintext of a pinned message or resource list, as clients seal it (docs/protocol.md).

A pin is an ordinary type-1 message body with two extra fields: `pin_id` (stays the same when the
pinner re-sends it under the current keys for a later joiner) and optional `links`, a resource
list. The server never sees any of this; clients validate what they receive from each other.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

MAX_LINKS = 10
MAX_LABEL_CHARS = 80
MAX_URL_CHARS = 500


@dataclass(frozen=True, slots=True)
class Link:
    """One entry of a resource list: a label and an https address."""

    label: str
    url: str


@dataclass(frozen=True, slots=True)
class Pinned:
    """The room's pin as this client can read it."""

    pin_id: str
    text: str
    links: tuple[Link, ...]
    sender_id: str
    seq: int


def new_pin_id() -> str:
    return secrets.token_urlsafe(12)  # 16 characters


def is_https(url: str) -> bool:
    """Only https links are offered to click; anything else is shown as text, if at all."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.scheme == "https" and bool(parts.netloc)


def check_links(links: list[tuple[str, str]]) -> tuple[Link, ...]:
    """Links to send, validated (raises ValueError with a reason)."""
    if len(links) > MAX_LINKS:
        raise ValueError(f"at most {MAX_LINKS} links")
    checked = []
    for label, url in links:
        if not 0 < len(label) <= MAX_LABEL_CHARS:
            raise ValueError(f"a label has 1 to {MAX_LABEL_CHARS} characters")
        if len(url) > MAX_URL_CHARS or not is_https(url):
            raise ValueError("links must be https:// addresses")
        checked.append(Link(label, url))
    return tuple(checked)


def body_fields(pin_id: str, links: tuple[Link, ...]) -> dict[str, Any]:
    """The extra body fields of a pin."""
    fields: dict[str, Any] = {"pin_id": pin_id}
    if links:
        fields["links"] = [{"label": link.label, "url": link.url} for link in links]
    return fields


def read_pin(body: dict[str, Any], text: str, sender_id: str, seq: int) -> Pinned | None:
    """The pin in a received body, or None when it is not a well-formed pin.

    Links that are malformed or not https are dropped, not shown."""
    pin_id = body.get("pin_id")
    if not isinstance(pin_id, str) or not 0 < len(pin_id) <= 64:
        return None
    links: list[Link] = []
    raw = body.get("links")
    for item in raw[:MAX_LINKS] if isinstance(raw, list) else []:
        if not isinstance(item, dict):
            continue
        label, url = item.get("label"), item.get("url")
        if (
            isinstance(label, str)
            and isinstance(url, str)
            and 0 < len(label) <= MAX_LABEL_CHARS
            and len(url) <= MAX_URL_CHARS
            and is_https(url)
        ):
            links.append(Link(label, url))
    return Pinned(pin_id, text, tuple(links), sender_id, seq)
