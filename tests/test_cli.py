"""Acceptance: the `chatserver` command as real processes; the server never holds plaintext."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from chatserver.cli import main
from chatserver.links import parse_link

CHATSERVER = str(Path(sys.executable).with_name("chatserver"))
ENV = {**os.environ, "PYTHONUNBUFFERED": "1"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Served:
    proc: subprocess.Popen[bytes]
    url: str
    log: Path


def start_server(tmp: Path) -> Served:
    port = free_port()
    log = tmp / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [CHATSERVER, "serve", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**ENV, "CHATSERVER_LOG_LEVEL": "debug"},
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while True:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=1) as resp:
                if resp.status == 200:
                    return Served(proc, url, log)
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("the server did not start:\n" + log.read_text())
        time.sleep(0.05)


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    served = start_server(tmp_path_factory.mktemp("shared"))
    yield served
    stop(served.proc)


def cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CHATSERVER, *args], capture_output=True, text=True, timeout=timeout, env=ENV, check=False
    )


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The same command in this process (no start-up cost): exit code, stdout, stderr."""
    capsys.readouterr()
    try:
        code = main(list(args))
    except SystemExit as exc:  # argparse: --help and usage errors
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def cli_many(*argsets: list[str], timeout: float = 30) -> list[subprocess.CompletedProcess[str]]:
    """Run several independent commands at once (each start costs most of a second)."""
    procs = [
        subprocess.Popen(
            [CHATSERVER, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=ENV,
        )
        for args in argsets
    ]
    results = []
    for args, proc in zip(argsets, procs, strict=True):
        out, err = proc.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess([CHATSERVER, *args], proc.returncode, out, err))
    return results


@dataclass
class Listener:
    proc: subprocess.Popen[bytes]
    out: Path
    err: Path

    def wait_joined(self, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.err.read_text()
            if "joined as" in text:
                return text
            if self.proc.poll() is not None:
                raise AssertionError(f"the listener exited early:\n{text}")
            time.sleep(0.05)
        raise AssertionError("the listener never joined:\n" + self.err.read_text())

    def finish(self, timeout: float = 25) -> tuple[int, list[str], str]:
        code = self.proc.wait(timeout)
        return code, self.out.read_text().splitlines(), self.err.read_text()


def listen(tmp: Path, name: str, *args: str) -> Listener:
    out, err = tmp / f"{name}.out", tmp / f"{name}.err"
    with out.open("wb") as o, err.open("wb") as e:
        proc = subprocess.Popen([CHATSERVER, "listen", *args], stdout=o, stderr=e, env=ENV)
    return Listener(proc, out, err)


def readable_memory(pid: int) -> Iterator[bytes]:
    """Every readable mapping of a live process (we run as root, so /proc/<pid>/mem is ours)."""
    with open(f"/proc/{pid}/maps") as maps, open(f"/proc/{pid}/mem", "rb", buffering=0) as mem:
        for line in maps:
            fields = line.split()
            start, end = (int(x, 16) for x in fields[0].split("-"))
            if "r" not in fields[1] or (len(fields) > 5 and fields[5] == "[vvar]"):
                continue
            try:
                mem.seek(start)
                yield mem.read(end - start)
            except (OSError, ValueError, OverflowError):
                continue


def test_canary_reaches_listeners_but_never_the_server(tmp_path: Path) -> None:
    served = start_server(tmp_path)
    listeners: list[Listener] = []
    try:
        created = cli("room", "create", served.url)
        assert created.returncode == 0, created.stderr
        link = created.stdout.strip()
        assert re.fullmatch(re.escape(served.url) + r"/r#[A-Za-z0-9_-]{43}", link), link
        assert "expires" in created.stderr
        listeners = [
            listen(tmp_path, f"l{i}", link, "--count", "1", "--json", "--timeout", "20")
            for i in range(2)
        ]
        for listener in listeners:
            assert "safety code" in listener.wait_joined()
        canary = f"canary-{uuid.uuid4().hex}"
        said = cli("say", link, canary, "--name", "Sender")
        assert said.returncode == 0, said.stderr
        for listener in listeners:
            code, lines, err = listener.finish()
            assert code == 0, err
            [line] = lines
            got = json.loads(line)
            assert set(got) == {"seq", "ts", "sender", "pseudonym", "text"}
            assert got["text"] == canary and got["pseudonym"] == "Sender"
            assert canary not in err

        # The server is still running: its memory must not hold the plaintext anywhere.
        assert served.proc.poll() is None
        needles = [canary.encode("utf-8"), canary.encode("utf-16-le")]
        # Positive control: the room id, which the server does hold, must be found.
        room_id = parse_link(link).room_id.encode()
        scanned, control = 0, False
        for region in readable_memory(served.proc.pid):
            scanned += len(region)
            control = control or room_id in region
            for needle in needles:
                assert needle not in region, "the server's memory holds the plaintext"
        assert scanned > 1_000_000 and control  # the scan really read the process
        log = served.log.read_bytes()
        assert b'"level": "debug"' in log or b"node started" in log
        for needle in needles:
            assert needle not in log

        served.proc.send_signal(signal.SIGTERM)
        assert served.proc.wait(10) == 0
    finally:
        for listener in listeners:
            stop(listener.proc)
        stop(served.proc)


def test_bad_link_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    result = cli("say", "not a link", "hello")
    assert result.returncode == 2 and "bad link" in result.stderr and result.stdout == ""
    for link in ("http://host/r#short", "ftp://host/r/AAAAAAAAAAAAAAAAAAAAAA", "http://host/x"):
        code, out, err = run_main(capsys, "say", link, "hello")
        assert code == 2 and "bad link" in err and out == "", (link, err)
    code, _, err = run_main(capsys, "listen", "http://host/r/not-an-id")
    assert code == 2 and "room id" in err
    code, _, err = run_main(capsys, "say")  # argparse: missing arguments
    assert code == 2 and "required" in err
    code, _, err = run_main(capsys, "room", "create", "http://host", "--listed")
    assert code == 2 and "--topic" in err


def test_unreachable_server_fails_with_a_message(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    said = cli("say", f"{url}/r/AAAAAAAAAAAAAAAAAAAAAA", "hello")
    assert said.returncode == 1
    assert "Cannot connect" in said.stderr and "Traceback" not in said.stderr
    code, out, err = run_main(capsys, "room", "create", url)
    assert code == 1 and "Cannot connect" in err and out == ""


def test_listed_room_flow(
    shared: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(capsys, "room", "create", shared.url, "--listed", "--topic", "anx")
    assert code == 0, err
    link = out.strip()
    assert re.fullmatch(re.escape(shared.url) + r"/r/[A-Za-z0-9_-]{22}", link), link
    listener = listen(tmp_path, "listed", link, "--count", "2", "--timeout", "20")
    try:
        listener.wait_joined()
        for text in ("first words", "second \x1b[31mwords"):
            said, _, err = run_main(capsys, "say", link, text)
            assert said == 0, err
        code, lines, err = listener.finish()
    finally:
        stop(listener.proc)
    assert code == 0, err
    assert len(lines) == 2
    assert re.fullmatch(r"\[\d\d:\d\d:\d\d\] [^:]+: first words", lines[0]), lines
    assert lines[1].endswith(": second \\u001b[31mwords")  # no terminal escapes get through


def test_host_link_takes_the_host_seat(
    shared: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_main(capsys, "room", "create", shared.url, "--host-link")
    assert code == 0, err
    link, host_line = out.strip().splitlines()
    assert host_line.startswith("host link")
    host_link = host_line.split(": ", 1)[1]
    assert host_link.startswith(link + ".")
    host = listen(tmp_path, "host", host_link, "--count", "1", "--json", "--timeout", "20")
    try:
        assert ", host (" in host.wait_joined()
        code, _, err = run_main(capsys, "say", link, "hello host")
        assert code == 0, err
        code, lines, err = host.finish()
    finally:
        stop(host.proc)
    assert code == 0, err
    assert json.loads(lines[0])["text"] == "hello host"


def test_listen_timeouts(shared: Served, capsys: pytest.CaptureFixture[str]) -> None:
    link = run_main(capsys, "room", "create", shared.url)[1].strip()
    waited, short = cli_many(
        ["listen", link, "--timeout", "0.5"], ["listen", link, "--count", "1", "--timeout", "0.5"]
    )
    assert waited.returncode == 0, waited.stderr
    assert "joined as" in waited.stderr
    assert short.returncode == 1 and "timed out" in short.stderr


def test_help_everywhere(capsys: pytest.CaptureFixture[str]) -> None:
    for args in (
        ["--help"],
        ["room", "--help"],
        ["room", "create", "--help"],
        ["say", "--help"],
        ["listen", "--help"],
    ):
        code, out, _ = run_main(capsys, *args)
        assert code == 0 and "usage:" in out, args
