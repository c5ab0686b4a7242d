"""The client's errors, and the reading of an ack into a result or a ChatError."""

from __future__ import annotations

from typing import Any


class ChatError(Exception):
    """A refusal from the server (its error `code` and safe `message`) or a client-side failure.

    `details`: what else the refusal carries, e.g. `rules` with `rules_not_accepted` (the room's
    ground rules, to show before accepting them; `rules_text` reads them)."""

    def __init__(
        self,
        code: str,
        message: str,
        retry_after: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retry_after = retry_after
        self.details = details or {}


class ConnectionLost(ChatError):
    """The connection dropped while a request was in flight (the client resumes by itself)."""

    def __init__(self) -> None:
        super().__init__("connection_lost", "The connection to the server was lost.")


# --- what a room shows a chat UI ------------------------------------------------------------


def _checked(ack: Any) -> dict[str, Any]:
    if not isinstance(ack, dict):
        raise ChatError("bad_ack", "The server sent an unexpected answer.")
    if not ack.get("ok"):
        error = ack.get("error") or {}
        details = {k: v for k, v in error.items() if k not in ("code", "message", "retry_after")}
        raise ChatError(
            str(error.get("code", "unknown")),
            str(error.get("message", "")),
            error.get("retry_after"),
            details,
        )
    return ack


def _error_of(ack: Any) -> ChatError:
    try:
        _checked(ack)
    except ChatError as exc:
        return exc
    return ChatError("unexpected", "The server accepted what was expected to fail.")
