"""Real processes on free ports for the scale-out tests: redis-server (alone or a 3-master
cluster), chatserver nodes (`chatserver serve`) and nginx rendered from deploy/nginx.conf.

Everything that waits is async (so a test's Socket.IO clients keep running while a node drains
or Redis restarts); starting a process is a plain Popen in its own process group. Every process
is registered in `LIVE` until it has exited, and `kill_leftovers()` (run by the conftest at the
end of the session and at exit) SIGKILLs whatever a failed test left behind.

A missing binary is an error with the fix in the message (`scripts/ensure-system-packages`),
never a skip.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import ctypes
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from types import ModuleType
from typing import Any

import aiohttp
import redis.asyncio as aioredis

from chatserver.config import ENV_PREFIX, Settings

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
HOST = "127.0.0.1"
SETTING_NAMES = frozenset(f.name for f in fields(Settings))


class HarnessError(RuntimeError):
    """A process did not start, or a binary is missing."""


# ---------------------------------------------------------------------------------------------
# binaries, ports, processes


def require_binary(name: str) -> str:
    """The path of a system binary, or an error that says how to get it."""
    found = shutil.which(name) or next(
        (str(p) for d in ("/usr/sbin", "/usr/bin", "/sbin") if (p := Path(d) / name).is_file()),
        None,
    )
    if found is None:
        raise HarnessError(
            f"{name} is not installed: run scripts/ensure-system-packages "
            "(installs redis-server, redis-tools and nginx from Debian)"
        )
    return found


def chatserver_binary() -> str:
    """`chatserver` from the running interpreter's environment, else the repository's .venv."""
    for candidate in (
        Path(sys.prefix) / "bin" / "chatserver",
        REPO / ".venv" / "bin" / "chatserver",
    ):
        if candidate.is_file():
            return str(candidate)
    raise HarnessError(
        "chatserver is not installed in the venv: run `make` (pip install -e '.[dev]')"
    )


_handed_out: set[int] = set()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago and not handed out before in this run."""
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((HOST, 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise HarnessError("no free port")


def port_is_open(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def established_connections(port: int) -> int:
    """How many ESTABLISHED TCP connections have local port `port` (Linux, /proc/net/tcp*).

    For a node listening on `port`, the number of clients (or nginx upstream connections) it
    holds right now: lets a test see which nodes its websockets landed on without any header.
    """
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as f:
            next(f)
            for line in f:
                cols = line.split()
                local, state = cols[1], cols[3]
                if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                    count += 1
    return count


LIVE: set[ManagedProcess] = set()


# Children get SIGKILL if pytest itself dies (killed by a timeout, say), so no redis-server or
# chatserver outlives a run even when no teardown ran. Looked up here, not in the child: after
# fork the child must not take the dynamic loader's locks.
_PR_SET_PDEATHSIG = 1
try:
    _prctl: Any = ctypes.CDLL(None, use_errno=True).prctl if sys.platform == "linux" else None
except (OSError, AttributeError):
    _prctl = None


def _die_with_parent() -> None:  # runs in the child between fork and exec
    _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


class ManagedProcess:
    """A child in its own process group, output to a log file, waited for without blocking."""

    def __init__(
        self, name: str, argv: Sequence[str], log_path: Path, env: Mapping[str, str] | None = None
    ):
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        if self.running:
            raise HarnessError(f"{self.name} is already running")
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
                preexec_fn=_die_with_parent if _prctl is not None else None,
            )
        LIVE.add(self)

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise HarnessError(f"{self.name} was never started")
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def signal(self, sig: int, group: bool = True) -> None:
        if not self.running:
            return
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)

    async def wait(self, timeout: float) -> int:
        """The exit code; TimeoutError if still running after `timeout` seconds."""
        assert self.proc is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while (code := self.proc.poll()) is None:
            if loop.time() > deadline:
                raise TimeoutError(f"{self.name} still running after {timeout}s")
            await asyncio.sleep(0.02)
        self._reap_group()
        LIVE.discard(self)
        return code

    def kill_now(self) -> None:
        """SIGKILL the whole group and reap, synchronously (teardown, atexit)."""
        if self.proc is None:
            return
        self.signal(signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=5)
        self._reap_group()
        LIVE.discard(self)

    def _reap_group(self) -> None:
        # nginx workers (and any grandchild) share the group; make sure none outlives the leader.
        assert self.proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_text().splitlines()[-lines:])

    async def wait_until(self, check: Any, what: str, timeout: float) -> None:
        """Poll the async `check()` until true; fail early, with the log, if the process exits."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        last_error: BaseException | None = None
        while True:
            if not self.running:
                raise HarnessError(
                    f"{self.name} exited with {self.returncode} before {what}; "
                    f"command: {' '.join(self.argv)}\n--- log ({self.log_path}) ---\n{self.tail()}"
                )
            try:
                if await check():
                    return
            except Exception as exc:
                last_error = exc
            if loop.time() > deadline:
                raise HarnessError(
                    f"{self.name} not {what} after {timeout}s (last error: {last_error!r})\n"
                    f"--- log ({self.log_path}) ---\n{self.tail()}"
                )
            await asyncio.sleep(0.05)


def kill_leftovers() -> list[str]:
    """SIGKILL every process the harness started that is still registered; their names."""
    names = []
    for process in list(LIVE):
        names.append(process.name)
        process.kill_now()
    return names


atexit.register(kill_leftovers)


def _tempdir(prefix: str) -> Path:
    return Path(tempfile.mkdtemp(prefix=f"chatserver-{prefix}-"))


# ---------------------------------------------------------------------------------------------
# redis


class RedisServer:
    """One redis-server on a free port: no persistence, bound to 127.0.0.1, files in a temp dir."""

    def __init__(
        self, port: int | None = None, extra_args: Sequence[str] = (), name: str = "redis"
    ):
        self.port = port or free_port()
        self.dir = _tempdir(f"{name}-{self.port}")
        self.name = f"{name}:{self.port}"
        argv = [
            require_binary("redis-server"),
            "--port", str(self.port),
            "--bind", HOST,
            "--save", "",
            "--appendonly", "no",
            "--dir", str(self.dir),
            "--daemonize", "no",
            "--logfile", "",
            *extra_args,
        ]  # fmt: skip
        self.process = ManagedProcess(self.name, argv, self.dir / "redis.log")

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.running

    def client(self, **kwargs: Any) -> aioredis.Redis:
        """A new redis.asyncio client on this server (the caller closes it with `aclose()`)."""
        return aioredis.Redis(host=HOST, port=self.port, socket_timeout=2, **kwargs)

    async def ping(self) -> bool:
        client = self.client(socket_connect_timeout=0.5)
        try:
            return bool(await client.ping())
        finally:
            await client.aclose()

    async def start(self, timeout: float = 10.0) -> RedisServer:
        self.process.start()
        await self.process.wait_until(self.ping, "answering PING", timeout)
        return self

    async def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM (no save: persistence is off) and wait for the exit code."""
        self.process.signal(signal.SIGTERM)
        return await self.process.wait(timeout)

    async def kill(self) -> int:
        """SIGKILL, as a crash."""
        self.process.signal(signal.SIGKILL)
        return await self.process.wait(5)

    async def restart(self, down_for: float = 0.0, timeout: float = 10.0) -> RedisServer:
        """Stop (kill if it will not stop), stay down `down_for` seconds, start on the same port."""
        if self.running:
            try:
                await self.stop(timeout=5)
            except TimeoutError:
                await self.kill()
        if down_for:
            await asyncio.sleep(down_for)
        return await self.start(timeout)

    def logs(self) -> str:
        return self.process.log_text()

    def cleanup(self) -> None:
        self.process.kill_now()
        shutil.rmtree(self.dir, ignore_errors=True)


class RedisCluster:
    """Three redis-server masters with `cluster-enabled yes`, joined by `redis-cli --cluster create`."""

    def __init__(self, masters: int = 3, node_timeout_ms: int = 2000):
        self.servers = [
            RedisServer(
                extra_args=[
                    "--cluster-enabled", "yes",
                    # The bus port is normally port + 10000, which can be taken or above 65535.
                    "--cluster-port", str(free_port()),
                    "--cluster-config-file", "nodes.conf",
                    "--cluster-node-timeout", str(node_timeout_ms),
                ],
                name="redis-cluster",
            )
            for _ in range(masters)
        ]  # fmt: skip

    @property
    def ports(self) -> list[int]:
        return [s.port for s in self.servers]

    @property
    def url(self) -> str:
        """A startup node (any node will do for a cluster client)."""
        return self.servers[0].url

    @property
    def urls(self) -> list[str]:
        return [s.url for s in self.servers]

    def client(self, **kwargs: Any) -> aioredis.RedisCluster:
        """A new redis.asyncio.cluster.RedisCluster (the caller closes it with `aclose()`)."""
        return aioredis.RedisCluster(host=HOST, port=self.servers[0].port, **kwargs)

    async def start(self, timeout: float = 30.0) -> RedisCluster:
        await asyncio.gather(*(s.start() for s in self.servers))
        cli = require_binary("redis-cli")
        argv = [cli, "--cluster", "create", *(f"{HOST}:{p}" for p in self.ports), "--cluster-yes"]
        result = await asyncio.to_thread(
            subprocess.run, argv, capture_output=True, text=True, timeout=timeout, check=False
        )
        if result.returncode != 0:
            raise HarnessError(
                f"redis-cli --cluster create failed:\n{result.stdout}\n{result.stderr}"
            )
        await self.wait_ok(timeout)
        return self

    async def cluster_info(self, server: RedisServer) -> dict[str, str]:
        client = server.client(decode_responses=True)
        try:
            raw = await client.execute_command("CLUSTER INFO")  # type: ignore[no-untyped-call]
        finally:
            await client.aclose()
        text = raw if isinstance(raw, str) else raw.decode() if isinstance(raw, bytes) else ""
        if isinstance(raw, dict):  # some client versions parse the reply already
            return {str(k): str(v) for k, v in raw.items()}
        return dict(line.split(":", 1) for line in text.splitlines() if ":" in line)

    async def wait_ok(self, timeout: float = 30.0) -> None:
        """Until every node says cluster_state:ok and knows every master."""
        for server in self.servers:

            async def ok(server: RedisServer = server) -> bool:
                info = await self.cluster_info(server)
                return (
                    info.get("cluster_state") == "ok"
                    and int(info.get("cluster_known_nodes", 0)) >= len(self.servers)
                    and int(info.get("cluster_slots_assigned", 0)) == 16384
                )

            await server.process.wait_until(ok, "in cluster_state:ok", timeout)

    async def flush(self) -> None:
        for server in self.servers:
            client = server.client()
            try:
                await client.flushall()
            finally:
                await client.aclose()

    def cleanup(self) -> None:
        for server in self.servers:
            server.cleanup()


# ---------------------------------------------------------------------------------------------
# chatserver nodes


def settings_env(settings: Mapping[str, Any]) -> dict[str, str]:
    """`{"ping_interval_s": 5}` (or `{"CHATSERVER_PING_INTERVAL_S": 5}`) as environment variables.

    Unknown names are an error, so a typo cannot silently test the default.
    """
    env = {}
    for key, value in settings.items():
        name = key[len(ENV_PREFIX) :].lower() if key.startswith(ENV_PREFIX) else key
        if name not in SETTING_NAMES:
            raise HarnessError(f"unknown chatserver setting {key!r}; see chatserver/config.py")
        env[ENV_PREFIX + name.upper()] = "" if value is None else str(value)
    return env


class ChatNode:
    """`chatserver serve --port <free> [--redis URL]` as a subprocess, logging to a temp file.

    `settings` are Settings field names (or CHATSERVER_* names) and values; `redis_url` goes on
    the command line as --redis. The environment is the test's, minus any CHATSERVER_* variable.
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        port: int | None = None,
        settings: Mapping[str, Any] | None = None,
        name: str | None = None,
    ):
        self.port = port or free_port()
        self.redis_url = redis_url
        self.settings = dict(settings or {})
        self.name = name or f"chatserver:{self.port}"
        self.dir = _tempdir(f"node-{self.port}")
        argv = [chatserver_binary(), "serve", "--host", HOST, "--port", str(self.port)]
        if redis_url:
            argv += ["--redis", redis_url]
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIX)}
        env.update(settings_env(self.settings))
        env.setdefault("PYTHONUNBUFFERED", "1")
        self.process = ManagedProcess(self.name, argv, self.dir / "node.log", env)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process.running

    @property
    def connections(self) -> int:
        """ESTABLISHED TCP connections to this node right now (clients or nginx upstreams)."""
        return established_connections(self.port)

    async def _status(self, path: str) -> int:
        timeout = aiohttp.ClientTimeout(total=1)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.get(self.url + path) as r,
        ):
            return r.status

    async def healthy(self) -> bool:
        return await self._status("/healthz") == 200

    async def ready(self) -> bool:
        return await self._status("/readyz") == 200

    async def start(self, wait_ready: bool = True, timeout: float = 20.0) -> ChatNode:
        self.process.start()
        await self.process.wait_until(self.healthy, "healthy (/healthz)", timeout)
        if wait_ready:
            await self.process.wait_until(self.ready, "ready (/readyz)", timeout)
        return self

    async def stop(self, timeout: float | None = None) -> int:
        """SIGTERM (graceful drain) and the exit code. TimeoutError (after a SIGKILL) if the node
        is still up after `timeout` (default: 2 x shutdown_grace_s + 5 s)."""
        if timeout is None:
            grace = float(self.settings.get("shutdown_grace_s", Settings.shutdown_grace_s))
            timeout = 2 * grace + 5
        self.process.signal(signal.SIGTERM)
        try:
            return await self.process.wait(timeout)
        except TimeoutError:
            self.process.kill_now()
            raise

    async def kill(self) -> int:
        """SIGKILL, as a crash: no drain, sockets reset."""
        self.process.signal(signal.SIGKILL)
        return await self.process.wait(5)

    async def restart(self, wait_ready: bool = True) -> ChatNode:
        """Start again on the same port (after stop() or kill())."""
        if self.running:
            await self.stop()
        return await self.start(wait_ready=wait_ready)

    def logs(self) -> str:
        """Everything the node wrote to stdout and stderr (all runs of this node)."""
        return self.process.log_text()

    def cleanup(self) -> None:
        self.process.kill_now()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"<ChatNode {self.url} redis={self.redis_url} running={self.running}>"


# ---------------------------------------------------------------------------------------------
# nginx


def load_renderer() -> ModuleType:
    """deploy/render_nginx_conf.py as a module (deploy/ is not a package)."""
    path = DEPLOY / "render_nginx_conf.py"
    spec = importlib.util.spec_from_file_location("render_nginx_conf", path)
    if spec is None or spec.loader is None:
        raise HarnessError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def render_nginx_conf(
    upstream_ports: Sequence[int],
    listen_port: int,
    sandbox_dir: Path,
    error_log_level: str = "warn",
) -> str:
    """deploy/nginx.conf for nodes on 127.0.0.1:<upstream_ports>, listening on 127.0.0.1:
    <listen_port>, with pid, error log and temp files under `sandbox_dir`, in the foreground."""
    return str(
        load_renderer().render(
            upstreams=[f"{HOST}:{p}" for p in upstream_ports],
            listen=[f"{HOST}:{listen_port}"],
            sandbox_dir=sandbox_dir,
            error_log_level=error_log_level,
        )
    )


class Nginx:
    """nginx from Debian, configured by rendering deploy/nginx.conf for the given nodes."""

    def __init__(self, upstreams: Sequence[ChatNode | int], port: int | None = None):
        self.upstream_ports = [u.port if isinstance(u, ChatNode) else int(u) for u in upstreams]
        self.port = port or free_port()
        self.dir = _tempdir(f"nginx-{self.port}")
        self.conf = self.dir / "nginx.conf"
        self.conf.write_text(render_nginx_conf(self.upstream_ports, self.port, self.dir))
        self.binary = require_binary("nginx")
        self.error_log = self.dir / "error.log"
        argv = [self.binary, "-p", str(self.dir), "-c", str(self.conf), "-e", str(self.error_log)]
        self.process = ManagedProcess(f"nginx:{self.port}", argv, self.dir / "stderr.log")

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def check_config(self) -> subprocess.CompletedProcess[str]:
        """`nginx -t` on the rendered file."""
        return subprocess.run(
            [
                self.binary,
                "-t",
                "-p",
                str(self.dir),
                "-c",
                str(self.conf),
                "-e",
                str(self.error_log),
            ],
            capture_output=True,
            text=True,
            check=False,
        )

    async def start(self, timeout: float = 10.0) -> Nginx:
        checked = self.check_config()
        if checked.returncode != 0:
            raise HarnessError(f"nginx -t failed for {self.conf}:\n{checked.stderr}")
        self.process.start()

        async def listening() -> bool:
            return port_is_open(self.port)

        await self.process.wait_until(listening, f"listening on {self.port}", timeout)
        return self

    async def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM to the master: nginx's fast shutdown, which closes open websockets at once
        (SIGQUIT would wait for them, up to proxy_read_timeout)."""
        self.process.signal(signal.SIGTERM, group=False)
        try:
            return await self.process.wait(timeout)
        except TimeoutError:
            self.process.kill_now()
            raise

    def logs(self) -> str:
        """nginx's error log and stderr."""
        text = self.error_log.read_text(errors="replace") if self.error_log.exists() else ""
        return text + self.process.log_text()

    def cleanup(self) -> None:
        self.process.kill_now()
        shutil.rmtree(self.dir, ignore_errors=True)
