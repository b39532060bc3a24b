"""Real peers on 127.0.0.1 for the URL tests: socat, ser2net, sredird, pyserial's PortManager.

Every process is killed and reaped in the fixture's teardown; ports are
picked free at the time; readiness is waited for on an event (socat's
"listening" line) or by retrying the connection at Trio checkpoints.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import attrs
import pytest
import serial
import serial.rfc2217
import trio


@contextlib.contextmanager
def full_backlog() -> Iterator[int]:
    """A listener whose backlog is full: a new connect() gets no answer at all."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))  # takes the one place
    try:
        yield port
    finally:
        filler.close()
        listener.close()


@contextlib.contextmanager
def silent_server() -> Iterator[int]:
    """A listener the kernel completes connections for, and that never sends a byte."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    try:
        yield listener.getsockname()[1]
    finally:
        listener.close()


def free_tcp_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_listening(port: int) -> None:
    """Retry a TCP connection until something listens on *port* (at most 10 s)."""
    with trio.fail_after(10):
        while True:
            try:
                stream = await trio.open_tcp_stream("127.0.0.1", port)
            except OSError:
                await trio.sleep(0.005)  # bounded poll, noqa: no event for a listen()
                continue
            await stream.aclose()
            return


def stop(process: subprocess.Popen[bytes]) -> None:
    """Kill *process* and everything it started (its own process group).

    socat's ``exec:`` children (sredird) outlive socat otherwise, and sredird
    spins at 100 % CPU once its socket is gone.
    """
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=10)
    for pipe in (process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()


def need(tool: str) -> None:
    if shutil.which(tool) is None:
        pytest.fail(f"{tool} is not installed (bash .ci/run installs it)")


@attrs.define
class PtyServer:
    """An RFC 2217 server in front of a pty: ``url`` to connect to, and the pty's two ends."""

    url: str
    master: int  # the device side: what the serial line carries
    slave: int  # the server's side, kept open here to read its termios


@pytest.fixture
def pty_fds() -> Iterator[tuple[int, int, str]]:
    master, slave = os.openpty()
    try:
        yield master, slave, os.ttyname(slave)
    finally:
        os.close(master)
        os.close(slave)


@pytest.fixture
async def ser2net(pty_fds: tuple[int, int, str], tmp_path: Path) -> AsyncIterator[PtyServer]:
    """ser2net 4.x as an RFC 2217 server for a pty (DESIGN.md section 6)."""
    need("ser2net")
    master, slave, path = pty_fds
    port = free_tcp_port()
    config = tmp_path / "ser2net.yaml"
    config.write_text(
        "%YAML 1.1\n---\n"
        "connection: &rfc2217\n"
        f"  accepter: telnet(rfc2217),tcp,127.0.0.1,{port}\n"
        "  enable: on\n"
        "  options:\n"
        "    kickolduser: true\n"
        f"  connector: serialdev,{path},115200n81,local\n"
    )
    process = await trio.lowlevel.open_process(
        ["ser2net", "-n", "-u", "-c", str(config), "-P", str(tmp_path / "ser2net.pid")],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        await wait_listening(port)
        yield PtyServer(f"rfc2217://127.0.0.1:{port}", master, slave)
    finally:
        process.kill()
        with trio.CancelScope(shield=True):
            await process.wait()


def start_socat(*addresses: str) -> subprocess.Popen[bytes]:
    """Run socat with *addresses*; return once its stderr says it is listening."""
    process = subprocess.Popen(
        ["socat", "-d", "-d", *addresses],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a process group of its own, for stop()
    )
    assert process.stderr is not None
    for raw in process.stderr:
        if b"listening on" in raw:
            return process
    stop(process)
    pytest.fail(f"socat {' '.join(addresses)} exited with {process.returncode} before listening")


@pytest.fixture
def sredird(pty_fds: tuple[int, int, str], tmp_path: Path) -> Iterator[PtyServer]:
    """sredird (an inetd-style RFC 2217 server) behind socat's TCP listener."""
    need("socat")
    program = shutil.which("sredird") or "/usr/sbin/sredird"
    if not os.path.exists(program):
        pytest.fail("sredird is not installed (bash .ci/run installs it)")
    master, slave, path = pty_fds
    port = free_tcp_port()
    process = start_socat(
        f"tcp-listen:{port},bind=127.0.0.1,reuseaddr",
        f"exec:{program} 0 {path} {tmp_path / 'LCK..sredird'}",
    )
    try:
        yield PtyServer(f"rfc2217://127.0.0.1:{port}", master, slave)
    finally:
        stop(process)


@attrs.define
class SocatPty:
    """socat's ``pty <-> tcp-listen``: ``url`` for socket://, ``device`` the pty path."""

    url: str
    device: str
    process: subprocess.Popen[bytes]


@pytest.fixture
def socat_tcp_pty() -> Iterator[SocatPty]:
    """``socat pty,raw,echo=0 tcp-listen:PORT,bind=127.0.0.1`` (DESIGN.md section 6)."""
    need("socat")
    port = free_tcp_port()
    process = subprocess.Popen(
        ["socat", "-d", "-d", "pty,raw,echo=0", f"tcp-listen:{port},bind=127.0.0.1,reuseaddr"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a process group of its own, for stop()
    )
    try:
        assert process.stderr is not None
        device = ""
        # Ready once socat says so: its stderr names the pty, then "listening on".
        for raw in process.stderr:
            line = raw.decode(errors="replace")
            if "PTY is " in line:
                device = line.rsplit("PTY is ", 1)[1].strip()
            if "listening on" in line:
                break
        else:
            pytest.fail(f"socat exited with {process.wait()} before listening")
        yield SocatPty(f"socket://127.0.0.1:{port}", device, process)
    finally:
        stop(process)


@attrs.define
class PortManagerServer:
    url: str
    serial: serial.SerialBase
    #: Set it to make the server close the client's connection.
    hang_up: threading.Event


@pytest.fixture
def portmanager_loop() -> Iterator[PortManagerServer]:
    """pyserial's own RFC 2217 server (``serial.rfc2217.PortManager``) over pyserial's ``loop://``.

    The one server here where DTR->DSR and RTS->CTS really work. It runs in
    a thread, as pyserial's ``rfc2217_server.py`` example does; it is the
    peer, not the code under test.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    port = listener.getsockname()[1]
    device = serial.serial_for_url("loop://", timeout=0)
    stopping = threading.Event()
    hang_up = threading.Event()

    def serve() -> None:
        listener.settimeout(0.05)
        while True:
            try:
                conn, _ = listener.accept()
                break
            except TimeoutError:
                if stopping.is_set():
                    return
        with conn:
            manager = serial.rfc2217.PortManager(device, _Sender(conn))  # type: ignore[arg-type]
            conn.settimeout(0.01)
            while not stopping.is_set() and not hang_up.is_set():
                try:
                    data = conn.recv(4096)
                except TimeoutError:
                    data = None
                except OSError:
                    return
                if data == b"":
                    return
                if data:
                    device.write(b"".join(manager.filter(data)))
                waiting = device.in_waiting
                if waiting:
                    conn.sendall(b"".join(manager.escape(device.read(waiting))))
                manager.check_modem_lines()

    thread = threading.Thread(target=serve, name="PortManager server", daemon=True)
    thread.start()
    try:
        yield PortManagerServer(f"rfc2217://127.0.0.1:{port}", device, hang_up)
    finally:
        stopping.set()
        thread.join(10)
        listener.close()
        device.close()


class _Sender:
    def __init__(self, conn: socket.socket) -> None:
        self.conn = conn

    def write(self, data: bytes) -> None:
        self.conn.sendall(data)


# ------------------------------------------------------------ hostile servers


def _answer_requests(conn: socket.socket) -> None:
    """Play a minimal, correct RFC 2217 server until the client's PURGE-DATA is answered."""
    conn.sendall(bytes((255, 253, 44, 255, 251, 44)))  # IAC DO / WILL COM-PORT-OPTION
    buffer = bytearray()
    while True:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionResetError("the client left during the negotiation")
        buffer += chunk
        while (start := buffer.find(bytes((255, 250, 44)))) >= 0 and (
            end := buffer.find(bytes((255, 240)), start)
        ) >= 0:
            command, value = buffer[start + 3], bytes(buffer[start + 4 : end])
            del buffer[: end + 2]
            conn.sendall(bytes((255, 250, 44, command + 100)) + value + bytes((255, 240)))
            if command == 12:  # PURGE-DATA: the open is complete
                return


@attrs.define
class FloodServer:
    """An RFC 2217 server that negotiates correctly, then sends *flood* without end.

    It never reads again after the negotiation. ``ran_out`` is set only if it
    flooded for ``MAX_FLOOD_SECONDS`` without the client leaving: a client
    call that returned before then did not wait for the flood to end.
    """

    url: str
    ran_out: threading.Event
    #: Bytes of flood the client's socket took so far.
    sent: list[int]


MAX_FLOOD_SECONDS = 20.0


@contextlib.contextmanager
def flood_server(flood: bytes, *, acknowledge: bool = True) -> Iterator[FloodServer]:
    """A :class:`FloodServer`; with ``acknowledge=False`` it agrees to RFC 2217
    and then floods at once, never answering the client's settings."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    ran_out = threading.Event()
    stopping = threading.Event()
    sent = [0]

    def serve() -> None:
        listener.settimeout(0.05)
        while not stopping.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(None)
                try:
                    if acknowledge:
                        _answer_requests(conn)
                    else:
                        conn.sendall(bytes((255, 253, 44, 255, 251, 44)))
                except OSError:
                    continue
                block = flood * max(1, 65536 // len(flood))
                conn.settimeout(0.05)
                deadline = time.monotonic() + MAX_FLOOD_SECONDS
                try:
                    while not stopping.is_set():
                        if time.monotonic() > deadline:
                            ran_out.set()
                            break
                        with contextlib.suppress(TimeoutError):  # the client is not reading
                            sent[0] += conn.send(block)
                except OSError:
                    pass  # the client dropped us

    thread = threading.Thread(target=serve, name="flood server", daemon=True)
    thread.start()
    try:
        yield FloodServer(f"rfc2217://127.0.0.1:{port}", ran_out, sent)
    finally:
        stopping.set()
        thread.join(10)
        listener.close()
