"""Our zmodem_send into our zmodem_receive: memory streams with a noisy line, a pty on anyio.

The noisy line corrupts and drops bytes in both directions (a wrapper over
:func:`trio.testing.memory_stream_pair`); recovery must go through ZRPOS and
end with every file intact. Timeouts are short so that a lost header costs
a fraction of a second; nothing waits on a sleep.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable
from pathlib import Path

import anyio
import pytest
import trio
import trio.testing
from anyio_helpers import BACKENDS, pty_pair, run

from trioserial import _zmodem_wire as w
from trioserial import anyio_transfer
from trioserial.transfer import (
    TransferCancelledError,
    TransferError,
    TransferProgress,
    TransferTimeoutError,
    UnsafeFileNameError,
    zmodem_receive,
    zmodem_send,
)

# Real lrzsz peers and whole transfers: more than the suite's default 20 s
# per-test deadline on a loaded 2-core machine (each test has its own fail_after).
pytestmark = pytest.mark.deadline(180)

Fault = Callable[[bytes], bytes]


class Line(trio.abc.Stream):
    """One end of a memory stream pair whose outgoing bytes pass through *fault*."""

    def __init__(self, inner: trio.abc.Stream, fault: Fault) -> None:
        self.inner = inner
        self.fault = fault
        self.sent = bytearray()

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        data = bytes(data)
        self.sent += data
        await self.inner.send_all(self.fault(data))

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        return bytes(await self.inner.receive_some(max_bytes))

    async def aclose(self) -> None:
        await self.inner.aclose()


def noise(seed: int, *, corrupt: float, drop: float) -> Fault:
    rng = random.Random(seed)

    def fault(data: bytes) -> bytes:
        out = bytearray(data)
        for _ in range(len(out) * 8):  # roughly *corrupt* per byte, without a loop per byte
            if rng.random() >= corrupt * 8:
                break
            out[rng.randrange(len(out))] ^= 1 << rng.randrange(8)
        if rng.random() < drop:
            cut = rng.randrange(len(out) + 1)
            del out[cut : cut + rng.randrange(1, 100)]
        return bytes(out)

    return fault


def clean(data: bytes) -> bytes:
    return data


def line_pair(s2r: Fault = clean, r2s: Fault = clean) -> tuple[Line, Line]:
    a, b = trio.testing.memory_stream_pair()
    return Line(a, s2r), Line(b, r2s)


FILES = {
    "empty": b"",
    "one": b"\x18",
    "escapes": bytes([0x18, 0x11, 0x13, 0x10, 0x40, 0x0D]) * 10_000,
    "random": random.Random(1).randbytes(300_000),
}


async def transfer(
    sender: Line, receiver: Line, directory: Path, files: dict[str, bytes], **kw: float
) -> list[Path]:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(lambda: zmodem_send(sender, list(files.items()), **kw))  # type: ignore[arg-type]
        return await zmodem_receive(receiver, directory, **kw)  # type: ignore[arg-type]


async def test_ours_to_ours_through_memory(tmp_path: Path) -> None:
    sender, receiver = line_pair()
    with trio.fail_after(30):
        got = await transfer(sender, receiver, tmp_path, FILES)
    assert got == [tmp_path / name for name in FILES]
    assert {p.name: p.read_bytes() for p in got} == FILES


async def test_corruption_and_drops_both_ways_recover(tmp_path: Path) -> None:
    sender, receiver = line_pair(
        noise(2, corrupt=1 / 40_000, drop=0.05), noise(3, corrupt=1 / 2_000, drop=0.05)
    )
    with trio.fail_after(60):
        got = await transfer(sender, receiver, tmp_path, FILES, timeout=2.0)
    assert {p.name: p.read_bytes() for p in got} == FILES
    assert receiver.sent.count(b"**\x18B09") > 3  # ZRPOS: recovered in place, not restarted


async def test_cancelled_receive_keeps_exactly_what_arrived_and_tells_the_sender(
    tmp_path: Path,
) -> None:
    data = random.Random(4).randbytes(1 << 20)
    sender, receiver = line_pair()
    seen: list[TransferProgress] = []
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:

            async def send() -> None:
                with pytest.raises(TransferCancelledError, match="receiver cancelled"):
                    await zmodem_send(sender, [("big", data)])

            nursery.start_soon(send)
            with trio.CancelScope() as scope:

                def cancel(p: TransferProgress) -> None:
                    seen.append(p)
                    if p.done > 200_000:
                        scope.cancel()

                await zmodem_receive(receiver, tmp_path, progress=cancel)
    part = (tmp_path / "big.part").read_bytes()
    assert len(part) == seen[-1].done
    assert part == data[: len(part)]
    assert not (tmp_path / "big").exists()
    # And a resumed transfer continues from there.
    sender, receiver = line_pair()
    with trio.fail_after(30):
        resumed: list[TransferProgress] = []
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: zmodem_send(sender, [("big", data)], resume=True))
            got = await zmodem_receive(receiver, tmp_path, progress=resumed.append)
    assert got == [tmp_path / "big"]
    assert got[0].read_bytes() == data
    assert resumed[0] == TransferProgress("big", len(part), len(data))


async def test_an_unsafe_name_cancels_and_writes_nothing_outside(tmp_path: Path) -> None:
    inside = tmp_path / "inside"
    inside.mkdir()
    sender, receiver = line_pair()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:

            async def send() -> None:
                with pytest.raises(TransferCancelledError):
                    await zmodem_send(sender, [("../outside", b"evil")])

            nursery.start_soon(send)
            with pytest.raises(UnsafeFileNameError, match="outside"):
                await zmodem_receive(receiver, inside)
    assert os.listdir(tmp_path) == ["inside"]
    assert os.listdir(inside) == []


async def test_a_file_ended_short_of_its_size_stays_part(tmp_path: Path) -> None:
    # A sender (written from the wire helpers) announces 1000 bytes and ends at 500.
    port, device = line_pair()

    async def wait_for(header: bytes) -> None:
        seen = b""
        while header not in seen:
            seen = seen[-64:] + await device.receive_some()

    async def short_sender() -> None:
        await wait_for(b"B01")  # ZRINIT
        zfile = w.binary_header(w.ZFILE, w.flags(w.ZCBIN), crc32=True)
        await device.send_all(zfile + w.subpacket(b"f\x001000\x00", w.ZCRCW, crc32=True))
        await wait_for(b"B09")  # ZRPOS
        await device.send_all(
            w.binary_header(w.ZDATA, w.position(0), crc32=True)
            + w.subpacket(b"A" * 500, w.ZCRCW, crc32=True)
        )
        await wait_for(b"B03")  # ZACK: the 500 bytes are in the file
        await device.send_all(w.binary_header(w.ZEOF, w.position(500), crc32=True))
        await wait_for(b"\x18" * 8)  # told: the abort

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(short_sender)
            with pytest.raises(TransferError, match="after 500 of its 1000 bytes"):
                await zmodem_receive(port, tmp_path)
    assert os.listdir(tmp_path) == ["f.part"]
    assert (tmp_path / "f.part").read_bytes() == b"A" * 500


@pytest.mark.parametrize("backend", BACKENDS)
def test_anyio_front_end_over_a_pty(backend: str, tmp_path: Path) -> None:
    data = random.Random(5).randbytes(200_000)

    async def main() -> list[Path]:
        with anyio.fail_after(30):
            async with pty_pair() as (port, device), anyio.create_task_group() as tg:
                tg.start_soon(lambda: anyio_transfer.zmodem_send(device, [("f.bin", data)]))
                got = await anyio_transfer.zmodem_receive(port, tmp_path)
        return got

    got = run(backend, main)
    assert got == [tmp_path / "f.bin"]
    assert got[0].read_bytes() == data


async def test_receive_times_out_with_what_the_line_said(tmp_path: Path) -> None:
    port, device = line_pair()
    await device.send_all(b"sh: sz: not found\r\n$ ")
    with trio.fail_after(10), pytest.raises(TransferTimeoutError, match="ZFILE") as info:
        await zmodem_receive(port, tmp_path, timeout=0.3)
    assert info.value.seen == b"sh: sz: not found$ "
    assert (await device.receive_some()).startswith(b"**\x18B01")  # ZRINIT, then the abort
    assert port.sent.endswith(b"\x18" * 8 + b"\x08" * 8)


async def test_cancelled_send_tells_our_receiver(tmp_path: Path) -> None:
    data = random.Random(8).randbytes(1 << 20)
    sender, receiver = line_pair()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:

            async def receive() -> None:
                with pytest.raises(TransferCancelledError, match="sender cancelled"):
                    await zmodem_receive(receiver, tmp_path)

            nursery.start_soon(receive)
            with trio.CancelScope() as scope:

                def cancel(p: TransferProgress) -> None:
                    if p.done >= 100_000:
                        scope.cancel()

                await zmodem_send(sender, [("big", data)], progress=cancel)
    part = (tmp_path / "big.part").read_bytes()
    assert len(part) >= 100_000
    assert part == data[: len(part)]
