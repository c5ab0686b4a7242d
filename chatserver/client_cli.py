"""Command-line client subcommands (filled in with the Python client)."""

from __future__ import annotations

import argparse
from typing import Any


def add_commands(commands: Any) -> None:
    del commands


__all__ = ["add_commands", "argparse"]
