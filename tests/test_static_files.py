"""The web client as the node serves it (a real server on the built web/dist): hashed assets
precompressed by Accept-Encoding and cached for a year, the page never cached, nothing else."""

from __future__ import annotations

import asyncio
import gzip
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest

from chatserver.app import create_app
from chatserver.config import Settings
from chatserver.static_files import IMMUTABLE, choose_encoding, is_hashed

from .conftest import ServerFactory

WEB_DIST = Path(__file__).resolve().parent.parent / "web" / "dist"
SECRET = (WEB_DIST.parent.parent / "pyproject.toml").read_bytes()[:40]  # must never leak
NEUTRAL = 'https://neutral.example/weather?a=1&b="x"'


@pytest.fixture
def dist() -> Path:
    if not (WEB_DIST / "index.html").is_file():
        pytest.fail(f"the web client is not built ({WEB_DIST}): run scripts/build-web first")
    return WEB_DIST


def referenced(dist: Path) -> tuple[str, str]:
    """The hashed script and stylesheet names that the built index.html loads."""
    page = (dist / "index.html").read_text()
    script = re.search(r'<script type="module" src="/static/([^"]+)"', page)
    style = re.search(r'<link rel="stylesheet" href="/static/([^"]+)"', page)
    assert script and style, page
    return script.group(1), style.group(1)


async def get(
    url: str, path: str, accept_encoding: str | None
) -> tuple[int, dict[str, str], bytes]:
    headers = {} if accept_encoding is None else {"Accept-Encoding": accept_encoding}
    # skip_auto_headers: no Accept-Encoding unless the test sends one.
    async with (
        aiohttp.ClientSession(auto_decompress=False) as session,
        session.get(url + path, headers=headers, skip_auto_headers=["Accept-Encoding"]) as r,
    ):
        return r.status, dict(r.headers), await r.read()


async def raw_get(url: str, target: str) -> tuple[int, bytes]:
    """One request with the target exactly as written (no client-side normalising of dots)."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    writer.write(f"GET {target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
    await writer.drain()
    answer = await reader.read()
    writer.close()
    await writer.wait_closed()
    status = int(answer.split(b" ", 2)[1])
    return status, answer


def brotli_decode(data: bytes) -> bytes:
    node = shutil.which("node")
    assert node, "node is needed to build the web client and to check its brotli files"
    script = (
        "process.stdout.write(require('zlib').brotliDecompressSync(require('fs').readFileSync(0)))"
    )
    return subprocess.run([node, "-e", script], input=data, capture_output=True, check=True).stdout


async def test_hashed_script_by_accept_encoding(make_server: ServerFactory, dist: Path) -> None:
    server = await make_server(web_dir=str(dist))
    script, _ = referenced(dist)
    assert is_hashed(script), script
    plain = (dist / script).read_bytes()

    status, headers, body = await get(server.url, f"/static/{script}", "gzip, deflate, br")
    assert status == 200
    assert headers["Content-Encoding"] == "br"
    assert brotli_decode(body) == plain
    assert len(body) < len(plain) / 3

    status, headers, body = await get(server.url, f"/static/{script}", "gzip, deflate")
    assert status == 200 and headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(body) == plain

    for identity in (None, "identity", "br;q=0, gzip;q=0"):
        status, headers, body = await get(server.url, f"/static/{script}", identity)
        assert status == 200 and "Content-Encoding" not in headers, identity
        assert body == plain

    status, headers, _ = await get(server.url, f"/static/{script}", "br;q=0, *")
    assert headers["Content-Encoding"] == "gzip"

    assert headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert headers["Cache-Control"] == IMMUTABLE == "public, max-age=31536000, immutable"
    assert headers["Vary"] == "Accept-Encoding"
    assert headers["X-Content-Type-Options"] == "nosniff"


async def test_hashed_stylesheet(make_server: ServerFactory, dist: Path) -> None:
    server = await make_server(web_dir=str(dist))
    _, style = referenced(dist)
    status, headers, body = await get(server.url, f"/static/{style}", "gzip")
    assert status == 200
    assert headers["Content-Type"] == "text/css; charset=utf-8"
    assert headers["Content-Encoding"] == "gzip"
    assert headers["Cache-Control"] == IMMUTABLE
    assert headers["Vary"] == "Accept-Encoding"
    assert gzip.decompress(body) == (dist / style).read_bytes()


async def test_page_is_never_cached(make_server: ServerFactory, dist: Path) -> None:
    server = await make_server(web_dir=str(dist), exit_url=NEUTRAL)
    script, style = referenced(dist)
    for path in ("/", "/r", "/r/", "/r/AAAAAAAAAAAAAAAAAAAAAA"):
        status, headers, body = await get(server.url, path, "gzip, br")
        assert status == 200
        assert headers["Cache-Control"] == "no-store", path
        assert headers["Content-Type"] == "text/html; charset=utf-8"
        assert "script-src 'self'" in headers["Content-Security-Policy"]
        page = body.decode()
        assert f'src="/static/{script}"' in page and f'href="/static/{style}"' in page
        assert "<script>" not in page and "style=" not in page
        # The static "Leave quickly" goes to the configured page, escaped for the attribute.
        assert 'href="https://neutral.example/weather?a=1&amp;b=&quot;x&quot;"' in page
        assert "__EXIT_URL__" not in page
    # Unhashed names (the build's manifest.json) are not cacheable either.
    status, headers, _ = await get(server.url, "/static/manifest.json", None)
    assert status == 200 and headers["Cache-Control"] == "no-store"


async def test_unknown_paths_and_traversal(make_server: ServerFactory, dist: Path) -> None:
    server = await make_server(web_dir=str(dist))
    script, _ = referenced(dist)
    secret = SECRET
    for path in (
        "/static/",
        "/static",
        "/static/nope.js",
        "/static/index.html",
        f"/static/{script}.br",
        f"/static/{script}.gz",
        "/static/.",
        "/static/..",
        "/static/../../pyproject.toml",
        "/static/%2e%2e/%2e%2e/pyproject.toml",
        "/static/..%2f..%2fpyproject.toml",
        "/static/%2e%2e%2f%2e%2e%2fpyproject.toml",
        "/static/..%5c..%5cpyproject.toml",
        "/static/....//....//pyproject.toml",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "/static/..%00/pyproject.toml",
    ):
        status, answer = await raw_get(server.url, path)
        assert status in (400, 404), (path, status)
        assert secret not in answer and b"root:" not in answer, path
        assert b"Index of" not in answer, path


async def test_exit_url_must_be_a_web_address() -> None:
    with pytest.raises(ValueError, match="http"):
        create_app(Settings(web_dir=str(WEB_DIST), exit_url="javascript:alert(1)"))


def test_choose_encoding() -> None:
    both = ["br", "gzip"]
    assert choose_encoding("gzip, deflate, br", both) == "br"
    assert choose_encoding("gzip;q=1, br;q=0.5", both) == "gzip"
    assert choose_encoding("br;q=0, gzip", both) == "gzip"
    assert choose_encoding("*", both) == "br"
    assert choose_encoding("*;q=0", both) is None
    assert choose_encoding("", both) is None
    assert choose_encoding("identity", both) is None
    assert choose_encoding("BR", both) == "br"
    assert choose_encoding("br;q=abc, gzip", both) == "gzip"
    assert choose_encoding("br", ["gzip"]) is None
    assert is_hashed("app.U7DL43IJ.js") and is_hashed("chunk.console.ABCDEFGH.js")
    assert not is_hashed("app.js") and not is_hashed("app.U7DL43IJ.js.LEGAL.txt")
