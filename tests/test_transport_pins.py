"""The engine.io / python-socketio / bidict / aiohttp internals the transport fast path relies on.

`chatserver/transport/engineio_fastpath.py` replaces engine.io internals (see the rule at its top).
Each test here checks one thing it relies on, against the installed packages, so an upgrade that
moves or reshapes one fails here, by name, instead of turning the fast path off or breaking it at
run time. pyproject.toml pins these packages to one minor version each, so that this test guards
them: widening a pin means reading the upstream changes for the names below and running this file.
"""

from __future__ import annotations

import asyncio
import inspect
import re
import tomllib
from importlib import metadata
from pathlib import Path

import bidict
import engineio
import pytest
import socketio
from aiohttp import web, web_protocol
from aiohttp.helpers import reify
from engineio import async_socket as eio_async_socket
from engineio import exceptions as eio_exceptions
from engineio import packet as eio_packet
from engineio.async_drivers import aiohttp as eio_aiohttp
from socketio import packet as sio_packet

from chatserver.transport import (
    ChatEngineServer,
    DirectSendQueue,
    EngineTransport,
    FanoutManager,
    PlainWebSocket,
    RoomFanout,
)

PYPROJECT = Path(__file__).resolve().parent.parent / "pyproject.toml"
# The distributions whose internals the fast path uses (see engineio_fastpath.py's docstring).
PINNED = ("python-engineio", "python-socketio", "bidict", "aiohttp")


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def _pin(name: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """The `>=low,<high` range pyproject.toml declares for `name`."""
    deps = tomllib.loads(PYPROJECT.read_text())["project"]["dependencies"]
    for dep in deps:
        found = re.fullmatch(rf"{re.escape(name)}\s*>=\s*([\d.]+)\s*,\s*<\s*([\d.]+)", dep)
        if found:
            return _version(found[1]), _version(found[2])
    raise AssertionError(f"pyproject.toml has no `{name}>=X.Y,<X.Z` pin (found: {deps})")


def _params(func: object) -> list[str]:
    return list(inspect.signature(func).parameters)  # type: ignore[arg-type]


# --- the pins --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PINNED)
def test_installed_version_is_inside_its_narrow_pin(name: str) -> None:
    low, high = _pin(name)
    installed = _version(metadata.version(name))
    assert low <= installed < high, (
        f"{name} {metadata.version(name)} is outside its pin >={low},<{high}: the transport fast "
        "path was checked against the pinned minor version only (see engineio_fastpath.py)"
    )
    # One minor version: X.Y up to X.Y+1, never a whole major range.
    assert high[0] == low[0] and high[1] == low[1] + 1, f"{name}'s pin spans more than one minor"


# --- engine.io -------------------------------------------------------------------------------


def test_engineio_driver_table_has_the_aiohttp_websocket() -> None:
    server = engineio.AsyncServer(async_mode="aiohttp")
    drivers = server._async
    assert isinstance(drivers, dict)
    assert drivers["websocket"] is eio_aiohttp.WebSocket
    # ChatEngineServer copies the table (it is module-level) before replacing the websocket.
    ours = ChatEngineServer(async_mode="aiohttp")
    assert ours._async["websocket"] is PlainWebSocket
    assert eio_aiohttp._async["websocket"] is eio_aiohttp.WebSocket


def test_engineio_websocket_is_built_from_the_sockets_bound_handler() -> None:
    assert issubclass(PlainWebSocket, eio_aiohttp.WebSocket)
    assert _params(eio_aiohttp.WebSocket.__init__) == ["self", "handler", "server"]
    assert _params(eio_aiohttp.WebSocket.__call__) == ["self", "environ"]
    upgrade = inspect.getsource(eio_async_socket.AsyncSocket._upgrade_websocket)
    assert re.search(r"_async\[['\"]websocket['\"]\]\(\s*self\._websocket_handler", upgrade), (
        "engine.io no longer builds its websocket as _async['websocket'](self._websocket_handler, "
        "server): PlainWebSocket finds its socket through handler.__self__"
    )
    server = ChatEngineServer(async_mode="aiohttp")
    socket = eio_async_socket.AsyncSocket(server, "sid")
    ws = PlainWebSocket(socket._websocket_handler, server)
    assert ws.handler.__self__ is socket
    assert ws.server is server


def test_engineio_aiohttp_environ_carries_the_request() -> None:
    assert "'aiohttp.request'" in inspect.getsource(eio_aiohttp.translate_request)


def test_engineio_socket_takes_its_queue_from_create_queue() -> None:
    assert _params(engineio.AsyncServer.create_queue) == ["self", "args", "kwargs"]
    server = ChatEngineServer(async_mode="aiohttp")
    socket = eio_async_socket.AsyncSocket(server, "sid")
    assert isinstance(socket.queue, DirectSendQueue)
    for name in ("sid", "connected", "upgraded", "closing", "closed"):
        assert hasattr(socket, name), f"engine.io socket has no `{name}`"
    assert socket.sid == "sid"


def test_engineio_calls_only_queue_methods_the_direct_queue_offers() -> None:
    source = inspect.getsource(eio_async_socket)
    called = set(re.findall(r"self\.queue\.(\w+)", source))
    assert called, "engine.io's socket no longer uses self.queue"
    # `get` is the polling transport's (off here: transports=["websocket"]) and the writer task's,
    # which PlainWebSocket.serve does not start.
    missing = {name for name in called - {"get"} if not hasattr(DirectSendQueue, name)}
    assert not missing, f"engine.io now calls queue methods DirectSendQueue lacks: {missing}"


def test_engineio_socket_receive_and_close_signatures() -> None:
    socket_class = eio_async_socket.AsyncSocket
    assert inspect.iscoroutinefunction(socket_class.receive)
    assert _params(socket_class.receive) == ["self", "pkt"]
    assert inspect.iscoroutinefunction(socket_class.close)
    assert _params(socket_class.close)[1:] == ["wait", "abort", "reason"]
    assert inspect.iscoroutinefunction(socket_class._websocket_handler)


def test_engineio_server_state_the_fast_path_reads() -> None:
    server = ChatEngineServer(async_mode="aiohttp")
    assert isinstance(server.sockets, dict)
    for name in ("ping_interval", "ping_timeout", "max_http_buffer_size"):
        assert isinstance(getattr(server, name), int | float), name
    assert isinstance(server.reason.TRANSPORT_CLOSE, str)
    assert isinstance(server.reason.PING_TIMEOUT, str)
    assert inspect.iscoroutinefunction(server.disconnect)
    assert _params(engineio.AsyncServer.disconnect)[:2] == ["self", "sid"]


def test_engineio_packets_encode_and_parse() -> None:
    encoded = eio_packet.Packet(eio_packet.MESSAGE, b"\x01\x02").encode()
    assert isinstance(encoded, bytes)
    assert eio_packet.Packet(encoded_packet=encoded).data == b"\x01\x02"
    assert eio_packet.Packet(eio_packet.PING).encode() == "2"
    assert eio_packet.Packet(encoded_packet="3").packet_type == eio_packet.PONG
    assert issubclass(eio_exceptions.SocketIsClosedError, Exception)


def test_engineio_heartbeat_is_one_background_task_per_ping() -> None:
    """The Pinger replaces `_send_ping`, which engine.io starts through the server's
    `start_background_task` from `schedule_ping` (after the connect event, and on each PONG)."""
    socket_class = eio_async_socket.AsyncSocket
    schedule = inspect.getsource(socket_class.schedule_ping)
    assert "self.last_ping = None" in schedule
    assert "self.server.start_background_task(self._send_ping)" in schedule
    send_ping = inspect.getsource(socket_class._send_ping)
    assert "asyncio.sleep(self.server.ping_interval)" in send_ping
    assert "self.last_ping = time.time()" in send_ping
    assert "packet.Packet(packet.PING)" in send_ping
    check = inspect.getsource(socket_class.check_ping_timeout)
    assert "time.time() - last_ping > self.server.ping_timeout" in check
    assert "s.schedule_ping()" in inspect.getsource(engineio.AsyncServer._handle_connect)
    receive = inspect.getsource(socket_class.receive)
    assert re.search(r"packet\.PONG:\s*self\.schedule_ping\(\)", receive)
    assert _params(engineio.AsyncServer.start_background_task) == [
        "self",
        "target",
        "args",
        "kwargs",
    ]
    # The service task (off here: the Pinger checks the timeouts) is what `monitor_clients` gates.
    assert "monitor_clients" in _params(engineio.AsyncServer.__init__)
    assert ChatEngineServer(async_mode="aiohttp").start_service_task is False


async def test_the_pinger_takes_engineio_ping_tasks() -> None:
    server = ChatEngineServer(async_mode="aiohttp", ping_interval=5, ping_timeout=5)
    socket = eio_async_socket.AsyncSocket(server, "sid")
    tasks = len(asyncio.all_tasks())
    socket.schedule_ping()  # as engine.io does once the connect event accepted the socket
    assert socket.last_ping is None
    assert len(server.pinger) == 1
    assert len(asyncio.all_tasks()) == tasks
    other = server.start_background_task(asyncio.sleep, 0)  # anything else is still a task
    assert isinstance(other, asyncio.Task)
    await other


# --- python-socketio and bidict --------------------------------------------------------------


def test_socketio_manager_emit_signature() -> None:
    expected = ["self", "event", "data", "namespace", "room", "skip_sid", "callback", "to"]
    assert _params(socketio.AsyncManager.emit)[: len(expected)] == expected
    assert _params(FanoutManager.emit)[: len(expected)] == expected
    assert inspect.iscoroutinefunction(socketio.AsyncManager.emit)


async def test_socketio_manager_rooms_are_bidicts_with_a_forward_dict() -> None:
    manager = socketio.AsyncManager()
    manager.set_server(socketio.AsyncServer(async_mode="aiohttp"))
    await manager.enter_room("sid1", "/", "room", eio_sid="eio1")
    members = manager.rooms["/"]["room"]
    assert isinstance(members, bidict.bidict)
    assert isinstance(members._fwdm, dict)
    assert members._fwdm == {"sid1": "eio1"}


def test_socketio_server_hooks() -> None:
    server = socketio.AsyncServer(async_mode="aiohttp")
    assert callable(server._engineio_server_class)
    assert server._engineio_server_class() is engineio.AsyncServer
    assert isinstance(server.eio, engineio.AsyncServer)
    assert server.packet_class is sio_packet.Packet
    encoded = server.packet_class(sio_packet.EVENT, namespace="/", data=["e", 1]).encode()
    assert isinstance(encoded, str | bytes | list)


def test_bidict_forward_dict() -> None:
    pairs = bidict.bidict({"a": "b"})
    assert type(pairs._fwdm) is dict
    assert pairs._fwdm == {"a": "b"}


# --- aiohttp ---------------------------------------------------------------------------------


def test_aiohttp_lets_an_upgraded_connection_be_taken_over() -> None:
    """`PlainWebSocket.__call__` takes the transport from aiohttp's request handler."""
    for name in ("transport", "protocol", "headers"):
        assert isinstance(inspect.getattr_static(web.BaseRequest, name), property | reify), name
    handler = web_protocol.RequestHandler
    # set_parser hands the bytes that came after the request head to the new parser.
    assert _params(handler.set_parser) == ["self", "parser", "data_received_cb"]
    set_parser = inspect.getsource(handler.set_parser)
    assert "self._payload_parser.feed_data(self._message_tail)" in set_parser
    assert "self._resume_reading_if_drained()" in set_parser
    received = inspect.getsource(handler.data_received)
    assert "self._message_tail += data" in received  # upgraded, no parser yet: kept for it
    # keep_alive(False) cancels the keep-alive timer, which would close the connection.
    assert _params(handler.keep_alive) == ["self", "val"]
    assert "self._keepalive_handle.cancel()" in inspect.getsource(handler.keep_alive)
    # connection_lost leaves the server, and with no transport force_close closes nothing.
    lost = inspect.getsource(handler.connection_lost)
    assert "self._manager.connection_lost(self, exc)" in lost
    assert "self._payload_parser.feed_eof()" in lost
    force_close = inspect.getsource(handler.force_close)
    assert "if self.transport is not None:" in force_close
    assert "self.transport.close()" in inspect.getsource(handler.start)
    assert "if self.transport is not None:" in inspect.getsource(handler.start)
    # What aiohttp does with the handler's response: DetachedResponse answers all of it.
    finish = inspect.getsource(handler.finish_response)
    assert "prepare_meth = resp.prepare" in finish and "await resp.write_eof()" in finish
    assert "resp.keep_alive" in inspect.getsource(handler.start)
    assert isinstance(inspect.getattr_static(web.StreamResponse, "prepared"), property)
    assert _params(web.StreamResponse.write_eof) == ["self", "data"]
    assert isinstance(inspect.getattr_static(web.StreamResponse, "keep_alive"), property)


def test_transports_can_change_protocol() -> None:
    from asyncio import selector_events

    assert callable(vars(selector_events)["_SelectorSocketTransport"].set_protocol)
    uvloop = pytest.importorskip("uvloop")
    assert callable(uvloop.loop.TCPTransport.set_protocol)


# --- the seam --------------------------------------------------------------------------------


async def test_the_implementation_meets_the_seam() -> None:
    assert asyncio.get_running_loop()
    assert isinstance(ChatEngineServer(async_mode="aiohttp"), EngineTransport)
    assert isinstance(FanoutManager(), RoomFanout)


def test_socket_server_hooks_keep_their_signatures() -> None:
    """The gateway's socket server overrides python-socketio's `AsyncServer._handle_*` hooks."""
    from chatserver.gateway.socket_server import ChatSocketServer

    overridden = [
        name
        for name, value in vars(ChatSocketServer).items()
        if name.startswith("_") and not name.startswith("__") and callable(value)
        if hasattr(socketio.AsyncServer, name)
    ]
    assert "_handle_eio_message" in overridden
    for name in overridden:
        ours = _params(getattr(ChatSocketServer, name))
        theirs = _params(getattr(socketio.AsyncServer, name))
        assert ours == theirs, f"socketio.AsyncServer.{name}{theirs} != ours {ours}"
    assert isinstance(socketio.AsyncServer.reason.CLIENT_DISCONNECT, str)
