"""The event loop a node runs on: uvloop when it is installed (the `fast` extra), else asyncio's.

`CHATSERVER_UVLOOP=0` keeps asyncio's loop even when uvloop is installed (to compare the two).
"""

from __future__ import annotations

import asyncio
import importlib
import os


def new_event_loop() -> asyncio.AbstractEventLoop:
    if os.environ.get("CHATSERVER_UVLOOP", "1").strip().lower() not in ("0", "false", "no", "off"):
        try:
            uvloop = importlib.import_module("uvloop")
        except ImportError:
            pass
        else:
            loop: asyncio.AbstractEventLoop = uvloop.new_event_loop()
            return loop
    return asyncio.new_event_loop()


def loop_name(loop: asyncio.AbstractEventLoop) -> str:
    return "uvloop" if type(loop).__module__.startswith("uvloop") else "asyncio"
