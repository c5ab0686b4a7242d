"""Summarise a py-spy raw (collapsed stacks) profile: top functions by self and by inclusive samples.

.venv/bin/python bench/profile_summary.py profile.txt [--top 15]
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^:()]*)(?::\d+)?\)$")


def _name(frame: str) -> str:
    match = FRAME.match(frame)
    if not match:
        return frame
    file = match["file"]
    for marker in ("site-packages/", "python3.11/", "chatserver/"):
        if marker in file:
            file = file.split(marker, 1)[1]
    return f"{match['func']} ({file})"


def summarise(path: Path, top: int = 15) -> dict[str, object]:
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_name(f) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        for name in set(frames):
            inclusive[name] += n
    pct = lambda c: round(100 * c / max(total, 1), 1)  # noqa: E731
    return {
        "samples": total,
        "self": [(name, pct(c)) for name, c in own.most_common(top)],
        "inclusive": [(name, pct(c)) for name, c in inclusive.most_common(top + 12)][12:]
        if False
        else [(name, pct(c)) for name, c in inclusive.most_common(top * 2)],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("profile", type=Path)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    summary = summarise(args.profile, args.top)
    print(f"samples: {summary['samples']}")
    print("self %:")
    for name, p in summary["self"]:  # type: ignore[attr-defined]
        print(f"  {p:5.1f}  {name}")
    print("inclusive %:")
    for name, p in summary["inclusive"]:  # type: ignore[attr-defined]
        print(f"  {p:5.1f}  {name}")


if __name__ == "__main__":
    main()
