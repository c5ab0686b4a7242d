"""The counters a node keeps as plain integers on the hot path (`chatserver.metrics` exposes them).

Its own module so that `node` (which holds them) and `metrics` (which reads the node) do not import
each other.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Stats:
    """What a node counts as it works."""

    envelopes: Counter[str] = field(default_factory=Counter)  # outcome -> count
    requests: Counter[str] = field(default_factory=Counter)  # "event:ok|code" -> count
    deliveries: int = 0
    resumes: Counter[str] = field(default_factory=Counter)  # outcome -> count
