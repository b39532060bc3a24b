"""The contenders: one small adapter per library, all with the same three calls.

Each adapter is a :class:`Port` whose ``send_all``, ``receive_some`` and
``aclose`` are the library's own bound methods wherever the library has a
matching call, so the timed loops add no layer of ours. Libraries that may be
missing are imported inside their opener; :func:`unavailable` says why a
contender cannot run.
"""

from __future__ import annotations

import importlib.util
import os
import tty
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Final

import trio

__all__ = ["CONTENDERS", "RAW", "Contender", "Port", "unavailable"]


@dataclass(frozen=True, slots=True)
class Port:
    """One open port as the workloads drive it."""

    send_all: Callable[[bytes], Awaitable[None]]
    receive_some: Callable[[int], Awaitable[bytes]]
    aclose: Callable[[], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Contender:
    """A library under test: its name, event loop, and how to open a port."""

    name: str
    backend: str  # "trio" or "asyncio", for anyio.run
    module: str  # what must be importable for it to run
    open: Callable[[str], Awaitable[Port]]
    note: str = ""


# ------------------------------------------------------------------ raw limit


class RawPort:
    """The raw limit: os.read/os.write first, trio's wait only on EAGAIN.

    No checkpoint when the syscall succeeds at once, no statistics, no
    conflict detection: the least work any Trio library can do per call.
    """

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK | os.O_CLOEXEC)
        tty.setraw(self.fd)  # VMIN=1, VTIME=0: EAGAIN means "nothing yet"

    async def send_all(self, data: bytes) -> None:
        fd = self.fd
        with memoryview(data) as view:
            sent = 0
            total = len(view)
            while sent < total:
                try:
                    sent += os.write(fd, view[sent:])
                except BlockingIOError:
                    await trio.lowlevel.wait_writable(fd)

    async def receive_some(self, max_bytes: int) -> bytes:
        fd = self.fd
        while True:
            try:
                return os.read(fd, max_bytes)
            except BlockingIOError:
                await trio.lowlevel.wait_readable(fd)

    async def aclose(self) -> None:
        trio.lowlevel.notify_closing(self.fd)
        os.close(self.fd)
        self.fd = -1


class CheckpointedRawPort(RawPort):
    """The raw limit plus the checkpoint that Trio's own streams give every call.

    ``checkpoint_if_cancelled`` first; then the syscall; if it succeeded at
    once, ``cancel_shielded_checkpoint`` (a schedule point); if it had to wait,
    the wait was the schedule point. The same sandwich as ``trio.SocketStream``
    (``_try_sync``): the floor for any Trio stream that keeps the
    "every call is a checkpoint" rule.
    """

    async def send_all(self, data: bytes) -> None:
        fd = self.fd
        await trio.lowlevel.checkpoint_if_cancelled()
        waited = False
        with memoryview(data) as view:
            sent = 0
            total = len(view)
            while sent < total:
                try:
                    sent += os.write(fd, view[sent:])
                except BlockingIOError:
                    waited = True
                    await trio.lowlevel.wait_writable(fd)
        if not waited:
            await trio.lowlevel.cancel_shielded_checkpoint()

    async def receive_some(self, max_bytes: int) -> bytes:
        fd = self.fd
        await trio.lowlevel.checkpoint_if_cancelled()
        try:
            data = os.read(fd, max_bytes)
        except BlockingIOError:
            pass
        else:
            await trio.lowlevel.cancel_shielded_checkpoint()
            return data
        while True:
            await trio.lowlevel.wait_readable(fd)
            try:
                return os.read(fd, max_bytes)
            except BlockingIOError:
                pass


async def open_checkpointed_raw(path: str) -> Port:
    port = CheckpointedRawPort(path)
    return Port(port.send_all, port.receive_some, port.aclose)


async def open_raw(path: str) -> Port:
    port = RawPort(path)
    return Port(port.send_all, port.receive_some, port.aclose)


# ----------------------------------------------------------------- trioserial


async def open_trioserial(path: str) -> Port:
    import trioserial

    port = await trioserial.open_serial_port(path)
    return Port(port.send_all, port.receive_some, port.aclose)


async def open_trioserial_anyio(path: str) -> Port:
    from trioserial import anyio as trioserial_anyio

    stream = await trioserial_anyio.open_serial_port(path)
    return Port(stream.send, stream.receive, stream.aclose)


# ---------------------------------------------------------------------- peers


async def open_trio_serial(path: str) -> Port:
    from trio_serial import SerialStream

    stream = SerialStream(path, baudrate=115200)
    await stream.aopen()
    return Port(stream.send_all, stream.receive_some, stream.aclose)


async def open_serial_asyncio_fast(path: str) -> Port:
    import serial_asyncio_fast

    reader, writer = await serial_asyncio_fast.open_serial_connection(url=path, baudrate=115200)

    async def send_all(data: bytes) -> None:
        writer.write(data)
        await writer.drain()

    async def aclose() -> None:
        writer.close()
        await writer.wait_closed()

    return Port(send_all, reader.read, aclose)


async def open_serialx(path: str) -> Port:
    import serialx

    port = serialx.async_serial_for_url(path, baudrate=115200)
    await port.open()
    return Port(port.write, port.read, port.close)


RAW: Final = Contender("raw limit", "trio", "trio", open_raw, "os.read/os.write + trio waits")

#: Every contender, the raw limit first (ratios are to it).
CONTENDERS: Final = (
    RAW,
    Contender(
        "raw + checkpoints",
        "trio",
        "trio",
        open_checkpointed_raw,
        "the raw limit with Trio's checkpoint per call",
    ),
    Contender("trioserial", "trio", "trioserial", open_trioserial, "AsyncSerial"),
    Contender(
        "trioserial.anyio/trio",
        "trio",
        "trioserial.anyio",
        open_trioserial_anyio,
        "anyio front end",
    ),
    Contender(
        "trioserial.anyio/asyncio",
        "asyncio",
        "trioserial.anyio",
        open_trioserial_anyio,
        "anyio front end",
    ),
    Contender("trio-serial", "trio", "trio_serial", open_trio_serial, "peer (trio)"),
    Contender(
        "pyserial-asyncio-fast",
        "asyncio",
        "serial_asyncio_fast",
        open_serial_asyncio_fast,
        "peer (asyncio streams)",
    ),
    Contender("serialx", "asyncio", "serialx", open_serialx, "peer (asyncio)"),
)


def unavailable(contender: Contender) -> str | None:
    """Why *contender* cannot run here, or None if it can."""
    try:
        found = importlib.util.find_spec(contender.module) is not None
    except ImportError:
        found = False
    if not found:
        return f"not available: module {contender.module!r} is not installed"
    return None


def by_name(name: str) -> Contender:
    for contender in CONTENDERS:
        if contender.name == name:
            return contender
    names = ", ".join(c.name for c in CONTENDERS)
    raise ValueError(f"unknown contender {name!r}: expected one of {names}")
