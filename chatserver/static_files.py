"""The web client's files, from the build in web/dist (web/build.mjs).

`index.html` is the root of trust for the page's encryption, so it is never cached (the
`security_headers` middleware gives it `no-store`); the server fills in the neutral exit URL of its
static "Leave quickly" link. Everything under /static/ is read into memory once, at start: a name
that was not in the build is a 404, so there is no directory listing and no path to traverse.
Content-hashed names (`app.<HASH>.js`, `style.<HASH>.css`, `chunk.<name>.<HASH>.js`) are cached
for a year (`immutable`); the build writes a `.br` and a `.gz` of each, sent by Accept-Encoding.
A new build needs a restart (rolling, like any upgrade) for the node to serve it.
"""

from __future__ import annotations

import html
import json
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from chatserver import resources

# esbuild's [hash]: 8 characters of base32, just before the extension.
_HASHED_SUFFIXES = (".js", ".css")
_HASH_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567")
IMMUTABLE = "public, max-age=31536000, immutable"
EXIT_URL_SLOT = "__EXIT_URL__"
# Best first when the browser takes both equally.
ENCODINGS = (("br", ".br"), ("gzip", ".gz"))
_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".txt": "text/plain; charset=utf-8",
    ".svg": "image/svg+xml",
}


def is_hashed(name: str) -> bool:
    """`app.U7DL43IJ.js`: the content's hash is in the name, so the bytes never change."""
    stem, dot, ext = name.rpartition(".")
    if not dot or f".{ext}" not in _HASHED_SUFFIXES:
        return False
    _, dot, digest = stem.rpartition(".")
    return bool(dot) and len(digest) == 8 and set(digest) <= _HASH_ALPHABET


def content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in _TYPES:
        return _TYPES[suffix]
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def accepted(header: str) -> dict[str, float]:
    """Accept-Encoding as {coding: q}: `br;q=0.8, gzip` -> {"br": 0.8, "gzip": 1.0}."""
    out: dict[str, float] = {}
    for part in header.split(","):
        coding, _, params = part.partition(";")
        coding = coding.strip().lower()
        if not coding:
            continue
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        out[coding] = q
    return out


def choose_encoding(header: str, available: list[str]) -> str | None:
    """The coding to send (of those built), or None for the file as it is."""
    acc = accepted(header)
    best: tuple[str, float] | None = None
    for coding in available:
        q = acc.get(coding, acc.get("*", 0.0))
        if q > 0 and (best is None or q > best[1]):
            best = (coding, q)
    return best[0] if best else None


@dataclass(frozen=True)
class Asset:
    body: bytes
    content_type: str
    immutable: bool
    encoded: dict[str, bytes]  # coding -> bytes, in ENCODINGS order


def load_assets(web_dir: Path) -> dict[str, Asset]:
    """Every regular file of the build's top level (not index.html, not the .br/.gz siblings)."""
    assets: dict[str, Asset] = {}
    siblings = tuple(suffix for _, suffix in ENCODINGS)
    for path in sorted(web_dir.iterdir()):
        name = path.name
        if name.startswith(".") or name == "index.html" or name.endswith(siblings):
            continue
        if path.is_symlink() or not path.is_file():
            continue
        encoded = {}
        for coding, suffix in ENCODINGS:
            packed = path.with_name(name + suffix)
            if packed.is_file() and not packed.is_symlink():
                encoded[coding] = packed.read_bytes()
        assets[name] = Asset(path.read_bytes(), content_type(name), is_hashed(name), encoded)
    return assets


def exit_url_for(resources_file: str, exit_url: str) -> str:
    """Where "Leave quickly" goes: the resources file's exit_url if it has one (as the app's
    quick exit does), else the setting. Only an absolute http(s) address is accepted."""
    body: dict[str, Any] = json.loads(resources.load(resources_file))
    url = body.get("exit_url") or exit_url
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.netloc:
        raise ValueError(f"CHATSERVER_EXIT_URL must be an http(s) address, not {url!r}")
    return str(url)


def render_index(template: str, exit_url: str) -> bytes:
    return template.replace(EXIT_URL_SLOT, html.escape(exit_url, quote=True)).encode()


def install(app: web.Application, web_dir: Path, exit_url: str) -> None:
    """Routes for the page (/, /r, /r/, /r/{room_id}) and /static/{name}."""
    page = render_index((web_dir / "index.html").read_text(encoding="utf-8"), exit_url)
    assets = load_assets(web_dir)

    async def serve_index(request: web.Request) -> web.Response:
        return web.Response(body=page, content_type="text/html", charset="utf-8")

    async def serve_static(request: web.Request) -> web.Response:
        asset = assets.get(request.match_info["name"])
        if asset is None:
            raise web.HTTPNotFound()
        headers = {"Content-Type": asset.content_type}
        if asset.immutable:
            headers["Cache-Control"] = IMMUTABLE
        body = asset.body
        if asset.encoded:
            headers["Vary"] = "Accept-Encoding"
            coding = choose_encoding(
                request.headers.get("Accept-Encoding", ""), list(asset.encoded)
            )
            if coding is not None:
                headers["Content-Encoding"] = coding
                body = asset.encoded[coding]
        return web.Response(body=body, headers=headers)

    app.router.add_get("/", serve_index)
    app.router.add_get("/r", serve_index)  # private links: /r#secret (the fragment stays home)
    app.router.add_get("/r/", serve_index)
    app.router.add_get("/r/{room_id}", serve_index)
    app.router.add_get("/static/{name}", serve_static)
