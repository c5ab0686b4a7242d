"""JSON logs that carry opaque ids only: no message bodies, addresses, keys or pseudonyms."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any

from aiohttp.http_exceptions import HttpProcessingError

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", None, None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and whatever `extra` named."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD:
                entry[key] = value
        return json.dumps(entry, default=str)


OWN_LOGGERS = "chatserver"
LIBRARY_RECORDS_PER_MINUTE = 10


class LibraryRecords(logging.Filter):
    """Library records without what a client may have put in them, at a bounded rate.

    A library formats its messages with what it was handed: a peer address ("Error handling request
    from %s"), a namespace, an origin, an exception's message. So a library record keeps only its
    format string (when it has arguments; else only where it was logged), no traceback but the
    exception's type, and each library logger gets `per_minute` records; the next one says how many
    were dropped. Our own loggers pass untouched: they log opaque ids only, by construction.
    """

    def __init__(self, per_minute: int = LIBRARY_RECORDS_PER_MINUTE) -> None:
        super().__init__()
        self.per_minute = per_minute
        self._windows: dict[str, tuple[float, int, int]] = {}  # logger -> (start, kept, dropped)

    def filter(self, record: logging.LogRecord) -> bool:
        if record.name == OWN_LOGGERS or record.name.startswith(OWN_LOGGERS + "."):
            return True
        start, kept, dropped = self._windows.get(record.name, (record.created, 0, 0))
        if record.created - start >= 60.0:
            start, kept = record.created, 0
        if kept >= self.per_minute:
            self._windows[record.name] = (start, kept, dropped + 1)
            return False
        self._windows[record.name] = (start, kept + 1, 0)
        if not record.args:
            record.msg = f"(library message withheld) at {record.module}:{record.lineno}"
        record.args = None
        if record.exc_info and record.exc_info[0] is not None:
            error = record.exc_info[0]
            record.error = error.__name__
            if issubclass(error, HttpProcessingError):
                # A request that is not HTTP is the client's fault, not the server's.
                record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = None
        record.exc_text = None
        record.stack_info = None
        if dropped:
            record.dropped_before = dropped
        return True


def configure(level: str) -> None:
    """Send JSON logs to stderr; silence libraries that would log payloads or peer addresses."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    # On the handler, not the library loggers: it then sees records of every logger, children too.
    handler.addFilter(LibraryRecords())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log records client addresses; engine.io/socket.io log packet contents at info.
    # aiohttp.server logs malformed requests at ERROR, with the peer's address as an argument.
    for name in (
        "aiohttp.access",
        "aiohttp.server",
        "aiohttp.web",
        "engineio",
        "socketio",
        "engineio.server",
        "socketio.server",
    ):
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.Formatter.converter = time.gmtime
