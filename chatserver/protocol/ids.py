"""Ids on the wire: 16 raw bytes as 22 characters of unpadded base64url."""

from __future__ import annotations

import base64


def b64id(raw: bytes) -> str:
    """16 raw id bytes as the 22-character unpadded base64url used on the wire."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def unb64id(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
