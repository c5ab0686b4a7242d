#!/usr/bin/env python3
"""Render deploy/nginx.conf for another layout: other upstream nodes, another listen address, or a
self-contained sandbox (pid, logs and temp files in one directory, foreground) for tests.

deploy/nginx.conf is the single source. The renderer only replaces the lines it marks:
  `... #@render:NAME`                        one line (pid, error_log, listen)
  `#@render:NAME-begin` ... `#@render:NAME-end`  a block (upstream, main, http)
Markers are kept in the output, so a rendered file can be rendered again.

    python3 deploy/render_nginx_conf.py --local 5 --first-port 8081     # 5 nodes on this host
    python3 deploy/render_nginx_conf.py --upstream 10.0.0.5:8080 --upstream 10.0.0.6:8080
    python3 deploy/render_nginx_conf.py --write-generated               # refresh nginx-compose.conf
    python3 deploy/render_nginx_conf.py --check                         # fail if it is stale

Standard library only: it runs on a bare host and is imported by tests/cluster/harness.py.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

DEPLOY_DIR = Path(__file__).resolve().parent
TEMPLATE = DEPLOY_DIR / "nginx.conf"

# Files generated from the template and checked in; the tests check they are current.
# file name -> its upstream servers.
GENERATED: dict[str, list[str]] = {
    # docker compose: one service "chatserver" with N replicas; nginx resolves the service name
    # to every replica's address when it starts (reload nginx after `--scale`).
    "nginx-compose.conf": ["chatserver:8080"],
}

_LINE = re.compile(r"^(?P<indent>\s*)(?P<body>.*?)(?P<gap>\s*)#@render:(?P<name>[a-z_]+)\s*$")
_BEGIN = re.compile(r"^(?P<indent>\s*)#@render:(?P<name>[a-z_]+)-begin\s*$")
_END = re.compile(r"^\s*#@render:(?P<name>[a-z_]+)-end\s*$")
_SERVER = re.compile(r"^\s*server\s+(?P<address>\S+?)(?P<params>(\s+[^;]*)?);")


class TemplateError(ValueError):
    """The template lacks a marker the renderer needs, or a block is not closed."""


def render(
    template: str | None = None,
    *,
    upstreams: Sequence[str] | None = None,
    listen: Sequence[str] | None = None,
    sandbox_dir: str | os.PathLike[str] | None = None,
    error_log_level: str | None = None,
    header: str | None = None,
) -> str:
    """The template with the marked parts replaced.

    upstreams: `host:port` of every node; each keeps the parameters (max_fails, ...) of the
        template's first server line.
    listen: listen directives' arguments, e.g. ["127.0.0.1:18080"]; default: the template's.
    sandbox_dir: when set, nginx runs in the foreground with its pid file, error log and every
        temp directory under this directory, so it needs nothing from /var or /run (tests).
        As root, workers then run as root too (they must reach the sandbox's temp directories).
    error_log_level: default: the template's level.
    header: a comment put at the top (e.g. "generated, do not edit").
    """
    text = TEMPLATE.read_text() if template is None else template
    sandbox = Path(sandbox_dir).resolve() if sandbox_dir is not None else None

    def single(name: str, indent: str, body: str, column: int) -> list[str]:
        if name == "pid" and sandbox is not None:
            body = f"pid {sandbox / 'nginx.pid'};"
        elif name == "error_log":
            parts = body.rstrip(";").split()
            path = str(sandbox / "error.log") if sandbox is not None else parts[1]
            level = error_log_level or (parts[2] if len(parts) > 2 else "error")
            body = f"error_log {path} {level};"
        elif name == "listen" and listen is not None:
            return [_mark(f"{indent}listen {spec};", "listen", column) for spec in listen]
        return [_mark(f"{indent}{body}", name, column)]

    def block(name: str, indent: str, old: list[str]) -> list[str]:
        if name == "upstream":
            if upstreams is None:
                return old
            if not upstreams:
                raise ValueError("at least one upstream is needed")
            params = ""
            for line in old:
                m = _SERVER.match(line)
                if m:
                    params = m.group("params") or ""
                    break
            return [f"{indent}server {address}{params};" for address in upstreams]
        if name == "main" and sandbox is not None:
            lines = [f"{indent}# sandbox: foreground, for a test harness or a supervisor"]
            lines.append(f"{indent}daemon off;")
            if hasattr(os, "geteuid") and os.geteuid() == 0:
                lines.append(f"{indent}user root;")
            return lines
        if name == "http" and sandbox is not None:
            return [
                f"{indent}{directive}_temp_path {sandbox / kind};"
                for directive, kind in (
                    ("client_body", "client_body"),
                    ("proxy", "proxy"),
                    ("fastcgi", "fastcgi"),
                    ("uwsgi", "uwsgi"),
                    ("scgi", "scgi"),
                )
            ]
        if name in ("main", "http"):
            return []
        raise TemplateError(f"unknown block marker {name!r}")

    out: list[str] = []
    seen: set[str] = set()
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        begin = _BEGIN.match(line)
        if begin:
            name = begin.group("name")
            j = i + 1
            while j < len(lines) and not _ends(lines[j], name):
                j += 1
            if j == len(lines):
                raise TemplateError(f"#@render:{name}-begin without #@render:{name}-end")
            out.append(line)
            out.extend(block(name, begin.group("indent"), lines[i + 1 : j]))
            out.append(lines[j])
            seen.add(name)
            i = j + 1
            continue
        m = _LINE.match(line)
        if m and not line.lstrip().startswith("#"):
            column = m.end("gap")
            out.extend(single(m.group("name"), m.group("indent"), m.group("body"), column))
            seen.add(m.group("name"))
        else:
            out.append(line)
        i += 1

    missing = {"pid", "error_log", "listen", "upstream", "main", "http"} - seen
    if missing:
        raise TemplateError(f"template lacks markers: {', '.join(sorted(missing))}")
    rendered = "\n".join(out) + "\n"
    if header:
        rendered = "".join(f"# {h}\n" if h else "#\n" for h in header.splitlines()) + rendered
    return rendered


def _ends(line: str, name: str) -> bool:
    end = _END.match(line)
    return end is not None and end.group("name") == name


def _mark(text: str, name: str, column: int) -> str:
    """`text` with its marker comment, aligned at `column` where there is room."""
    return f"{text.ljust(column - 2)}  #@render:{name}"


def generated_files() -> dict[Path, str]:
    """Every checked-in rendering, as it should read now."""
    return {
        DEPLOY_DIR / name: render(
            header=(
                "GENERATED from deploy/nginx.conf by deploy/render_nginx_conf.py: do not edit.\n"
                "Regenerate: python3 deploy/render_nginx_conf.py --write-generated\n"
            ),
            upstreams=upstreams,
        )
        for name, upstreams in GENERATED.items()
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--upstream", action="append", metavar="HOST:PORT", help="a node (repeat)")
    parser.add_argument("--local", type=int, metavar="N", help="N nodes on 127.0.0.1")
    parser.add_argument("--first-port", type=int, default=8081, help="first port for --local")
    parser.add_argument("--listen", action="append", metavar="ADDR", help="listen on (repeat)")
    parser.add_argument("--error-log-level", help="e.g. crit (default), error, warn")
    parser.add_argument("-o", "--output", help="write here instead of stdout")
    parser.add_argument("--write-generated", action="store_true", help="refresh checked-in files")
    parser.add_argument("--check", action="store_true", help="fail if checked-in files are stale")
    args = parser.parse_args(argv)

    if args.check or args.write_generated:
        stale = []
        for path, text in generated_files().items():
            current = path.read_text() if path.exists() else None
            if current != text:
                if args.write_generated:
                    path.write_text(text)
                    print(f"wrote {path}", file=sys.stderr)
                else:
                    stale.append(path)
        for path in stale:
            print(
                f"{path} is stale: python3 deploy/render_nginx_conf.py --write-generated",
                file=sys.stderr,
            )
        return 1 if stale else 0

    upstreams = list(args.upstream or [])
    if args.local:
        upstreams += [f"127.0.0.1:{args.first_port + i}" for i in range(args.local)]
    text = render(
        upstreams=upstreams or None,
        listen=args.listen,
        error_log_level=args.error_log_level,
    )
    if args.output:
        Path(args.output).write_text(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
