"""TtyPort.read_nowait reads a burst in one call: every byte, in order, never past max_bytes.

A tty read returns at most the line discipline's 4 KiB, so ``read_nowait``
goes on reading while reads come back full (one event-loop pass per burst
instead of per 4 KiB; see docs/performance.rst). How much a pty has queued
behind the line discipline at any moment depends on the kernel's timing, so
the exact burst logic is tested through a narrow seam: a datagram socketpair,
whose every read returns exactly one datagram, stands in for "each read
returns one buffer's worth". The end-to-end test on a real pty checks the
property users rely on: nothing lost, duplicated or reordered, and no call
returns more than asked.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest
import trio

from trioserial import SerialSettings
from trioserial._port import TtyPort
from trioserial.testing import open_pty_pair


@pytest.fixture
def datagrams() -> Iterator[tuple[TtyPort, socket.socket]]:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    ours.setblocking(False)
    port = TtyPort(ours.detach(), "seqpacket", SerialSettings(exclusive=False))
    try:
        yield port, theirs
    finally:
        port.close()
        theirs.close()


def test_full_reads_continue_until_a_short_one(datagrams: tuple[TtyPort, socket.socket]) -> None:
    port, device = datagrams
    sent = [bytes([i]) * 4096 for i in range(3)] + [b"tail", b"next burst"]
    for datagram in sent:
        device.send(datagram)
    assert port.read_nowait(65536) == b"".join(sent[:4])
    assert port.read_nowait(65536) == b"next burst"


def test_a_burst_stops_at_max_bytes(datagrams: tuple[TtyPort, socket.socket]) -> None:
    port, device = datagrams
    for i in range(3):
        device.send(bytes([i]) * 4096)
    assert port.read_nowait(8192) == bytes([0]) * 4096 + bytes([1]) * 4096
    assert port.read_nowait(8192) == bytes([2]) * 4096


def test_a_burst_stops_when_drained(datagrams: tuple[TtyPort, socket.socket]) -> None:
    port, device = datagrams
    device.send(b"x" * 4096)
    assert port.read_nowait(65536) == b"x" * 4096  # the second read got EAGAIN
    with pytest.raises(BlockingIOError):
        port.read_nowait(65536)


def test_a_short_read_is_returned_at_once(datagrams: tuple[TtyPort, socket.socket]) -> None:
    port, device = datagrams
    device.send(b"ab")
    device.send(b"cd")
    assert port.read_nowait(65536) == b"ab"  # a small message costs one syscall


@pytest.mark.parametrize("max_bytes", [1, 4095, 10_000, 65536])
async def test_fast_device_bytes_arrive_whole_and_in_order(max_bytes: int) -> None:
    payload = os.urandom(100_000)
    port, device = await open_pty_pair()
    received = bytearray()
    async with port, device, trio.open_nursery() as nursery:
        nursery.start_soon(device.send_all, payload)
        while len(received) < len(payload):
            chunk = await port.receive_some(max_bytes)
            assert 1 <= len(chunk) <= max_bytes
            received += chunk
    assert received == payload
