"""The Trio driver: ours to ours through memory streams (with noise), cancellation, arguments.

Cancellation is also tested against lrzsz on a pty pair: a cancelled call
must tell the peer (it exits with an error instead of waiting out its
timeouts) and leave the port ready for the next transfer.
"""

from __future__ import annotations

import io
import random
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any, cast

import pytest
import trio
import trio.testing
from lrzsz_peers import PtyCable, lrzsz, pty_cable

from trioserial import _xymodem as x
from trioserial import open_serial_port
from trioserial.transfer import (
    TransferCancelledError,
    TransferError,
    TransferFileError,
    TransferProgress,
    UnsafeFileNameError,
    xmodem_receive,
    xmodem_send,
    ymodem_receive,
    ymodem_send,
)

# Real lrzsz peers and whole transfers: more than the suite's default 20 s
# per-test deadline on a loaded 2-core machine (each test has its own fail_after).
pytestmark = pytest.mark.deadline(180)

__all__ = ["pty_cable"]

Fault = Callable[[bytes], bytes]


class Noisy(trio.abc.Stream):
    """A stream whose sends pass through *fault* (corrupt, drop) after a random short delay."""

    def __init__(self, inner: trio.abc.Stream, fault: Fault, seed: int, delay: float) -> None:
        self.inner = inner
        self.fault = fault
        self.rng = random.Random(seed)
        self.delay = delay

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        if self.delay:
            await trio.sleep(self.rng.random() * self.delay)  # line latency, not a wait for data
        out = self.fault(bytes(data))
        if out:
            await self.inner.send_all(out)

    async def wait_send_all_might_not_block(self) -> None:
        await self.inner.wait_send_all_might_not_block()

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        return await self.inner.receive_some(max_bytes)

    async def aclose(self) -> None:
        await self.inner.aclose()


def corrupt(every: int, seed: int) -> Fault:
    rng = random.Random(seed)

    def fault(data: bytes) -> bytes:
        out = bytearray(data)
        for i in range(len(out)):
            if rng.randrange(every) == 0:
                out[i] ^= 1 << rng.randrange(8)
        return bytes(out)

    return fault


def drop(every: int, seed: int) -> Fault:
    rng = random.Random(seed)
    return lambda data: b"" if rng.randrange(every) == 0 else data


def clean(data: bytes) -> bytes:
    return data


FILES = {
    "empty": b"",
    "one": b"\x01",
    "block": bytes(range(256)) * 4,
    "block1": bytes(range(256)) * 4 + b"!",
    "ends-1a": b"abc" + b"\x1a" * 300,
    "random": random.Random(0).randbytes(20_000),
}


@pytest.mark.parametrize("seed", range(3))
async def test_ymodem_ours_to_ours_through_a_noisy_line(tmp_path: Path, seed: int) -> None:
    a, b = trio.testing.memory_stream_pair()
    # The machines' retry intervals are a third of the timeout: with drops of
    # 1 in 25, three in a row (a timeout) is very unlikely.
    sender = Noisy(a, corrupt(20_000, seed), seed, 0.002)
    receiver = Noisy(b, drop(25, seed), seed + 1, 0.002)
    sent: list[TransferProgress] = []
    got: list[TransferProgress] = []
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                lambda: ymodem_send(sender, list(FILES.items()), progress=sent.append, timeout=4)
            )
            paths = await ymodem_receive(receiver, tmp_path, progress=got.append, timeout=4)
    assert [p.name for p in paths] == list(FILES)
    for name, data in FILES.items():
        assert (tmp_path / name).read_bytes() == data
    assert sent[-1] == got[-1] == TransferProgress("random", 20_000, 20_000)
    assert not list(tmp_path.glob("*.part"))  # noqa: ASYNC240 (a test's tmp dir)


class _Unsized(io.RawIOBase):
    """A file object whose size cannot be known without reading it, as a pipe's."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        return self._data.readinto(buffer)


async def test_ymodem_file_objects_in_memory_and_of_unknown_size(tmp_path: Path) -> None:
    # A header without a size once sent "NAME NUL  MTIME MODE", and the
    # receiver read the mtime as the size (seen as U-Boot's loady of a BytesIO
    # into the fake U-Boot). A BytesIO's size is now sent; without a size, the
    # name goes alone and the file keeps the padding of its last block.
    data = random.Random(5).randbytes(3000)
    a, b = trio.testing.memory_stream_pair()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            unsized = cast("IO[bytes]", _Unsized(data))
            nursery.start_soon(ymodem_send, a, [("mem", io.BytesIO(data)), ("pipe", unsized)])
            await ymodem_receive(b, tmp_path)
    assert (tmp_path / "mem").read_bytes() == data
    assert (tmp_path / "pipe").read_bytes() == data.ljust(3072, b"\x1a")


async def test_ymodem_a_path_sent_under_another_name(tmp_path: Path) -> None:
    source = tmp_path / "build" / "image-v1.2.bin"
    source.parent.mkdir()
    source.write_bytes(b"image")
    out = tmp_path / "out"
    out.mkdir()
    a, b = trio.testing.memory_stream_pair()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            files: list[tuple[str, str | Path]] = [("image.bin", source), ("str.bin", str(source))]
            nursery.start_soon(ymodem_send, a, files)
            assert await ymodem_receive(b, out) == [out / "image.bin", out / "str.bin"]
    assert (out / "image.bin").read_bytes() == (out / "str.bin").read_bytes() == b"image"


@pytest.mark.parametrize("block_size", [128, 1024])
@pytest.mark.parametrize("name", list(FILES))
async def test_xmodem_ours_to_ours_every_size(block_size: int, name: str) -> None:
    data = FILES[name]
    a, b = trio.testing.memory_stream_pair()
    sink = io.BytesIO()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: xmodem_send(a, data, block_size=block_size))
            assert await xmodem_receive(b, sink, size=len(data)) == len(data)
    assert sink.getvalue() == data


async def test_xmodem_through_a_noisy_line_from_a_file_to_a_path(tmp_path: Path) -> None:
    data = random.Random(1).randbytes(30_000)
    source = tmp_path / "in.bin"
    source.write_bytes(data)
    a, b = trio.testing.memory_stream_pair()
    with trio.fail_after(60):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                lambda: xmodem_send(Noisy(a, corrupt(10_000, 2), 2, 0.001), source, timeout=4)
            )
            await xmodem_receive(
                Noisy(b, drop(25, 3), 3, 0.001), tmp_path / "out.bin", size=len(data), timeout=4
            )
    assert (tmp_path / "out.bin").read_bytes() == data


@pytest.mark.parametrize("seed", range(6))
async def test_a_cancel_at_a_random_point_tells_the_peer_then_the_line_works(
    tmp_path: Path, seed: int
) -> None:
    """Cancel one side after a random delay (mid-send, mid-wait, between blocks)."""
    rng = random.Random(seed)
    cancel_sender = seed % 2 == 0
    a, b = trio.testing.memory_stream_pair()
    data = rng.randbytes(200_000)
    got: list[TransferProgress] = []
    out = tmp_path / "1"
    out.mkdir()
    other_error: list[BaseException] = []

    # About a millisecond per block each way, so the transfer lasts long enough.
    slow_a = Noisy(a, clean, seed, 0.002)
    slow_b = Noisy(b, clean, seed, 0.002)

    async def send() -> None:
        await ymodem_send(slow_a, [("f", data)], timeout=2)

    async def receive() -> None:
        await ymodem_receive(slow_b, out, progress=got.append, timeout=2)

    async def cancelled(fn: Callable[[], object]) -> None:
        with trio.move_on_after(0.01 + rng.random() * 0.1) as scope:
            await fn()  # type: ignore[misc]
        assert scope.cancelled_caught, "the transfer ended before the cancel"

    async def other(fn: Callable[[], object]) -> None:
        try:
            await fn()  # type: ignore[misc]
        except TransferCancelledError as exc:
            other_error.append(exc)

    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(cancelled, send if cancel_sender else receive)
            nursery.start_soon(other, receive if cancel_sender else send)
        # The other side was told: it ended at once with TransferCancelledError
        # (not after its timeout, which fail_after would not leave time for twice).
        assert other_error, "the peer was not told"
        part = out / "f.part"
        assert part.read_bytes() == data[: got[-1].done if got else 0]
        # The same streams carry the next transfer.
        out2 = tmp_path / "2"
        out2.mkdir()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lambda: ymodem_send(a, [("g", data[:5000])], timeout=3))
            assert await ymodem_receive(b, out2, timeout=3) == [out2 / "g"]
    assert (out2 / "g").read_bytes() == data[:5000]


async def test_cancelled_send_sends_can_and_the_receiver_stops_at_once(tmp_path: Path) -> None:
    a, b = trio.testing.memory_stream_pair()
    seen: list[TransferProgress] = []
    scope = trio.CancelScope()

    def progress(p: TransferProgress) -> None:
        seen.append(p)
        if p.done >= 5 * 1024:
            scope.cancel()

    async def send() -> None:
        with scope:
            await ymodem_send(a, [("f", bytes(50_000))], progress=progress)

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send)
            with pytest.raises(TransferCancelledError, match="sender cancelled"):
                await ymodem_receive(b, tmp_path, timeout=5)
    assert seen[-1].done == 5 * 1024
    assert (tmp_path / "f.part").read_bytes() == bytes(5 * 1024)


async def test_a_hostile_header_writes_nothing_and_cancels(tmp_path: Path) -> None:
    a, b = trio.testing.memory_stream_pair()
    target = tmp_path / "inside"
    target.mkdir()

    async def evil_sender() -> None:
        assert await a.receive_some() == b"C"
        await a.send_all(x.build_block(0, b"../x\x005", size=128, crc=True, pad=0))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(evil_sender)
            with pytest.raises(UnsafeFileNameError, match=r"\.\."):
                await ymodem_receive(b, target)
        told = await a.receive_some()
    assert told.startswith(b"\x18\x18")
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["inside"]  # noqa: ASYNC240


async def test_bad_arguments_get_one_clear_error(tmp_path: Path) -> None:
    a, _ = trio.testing.memory_stream_pair()
    with pytest.raises(ValueError, match="block_size must be 128 or 1024, got 512"):
        await xmodem_send(a, b"x", block_size=512)
    with pytest.raises(ValueError, match="timeout must be a positive number"):
        await xmodem_send(a, b"x", timeout=0)
    with pytest.raises(TypeError, match="data must be bytes-like, a binary file object or a path"):
        await xmodem_send(a, 42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"stream must be a trio\.abc\.Stream"):
        await xmodem_send(object(), b"x")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="files must be a list"):
        await ymodem_send(a, "file.bin")
    with pytest.raises(TransferFileError, match=r"cannot read .*missing\.bin"):
        await ymodem_send(a, [tmp_path / "missing.bin"])
    with pytest.raises(TransferFileError, match="not a directory"):
        await ymodem_receive(a, tmp_path / "missing")
    with pytest.raises(ValueError, match="size must be a number of bytes"):
        await xmodem_receive(a, io.BytesIO(), size=-1)


async def test_the_port_hanging_up_is_a_transfer_error() -> None:
    a, b = trio.testing.memory_stream_pair()
    await b.send_stream.aclose()
    with trio.fail_after(5), pytest.raises(TransferError, match="hung up"):
        await xmodem_receive(a, io.BytesIO())


# --------------------------------------------------------------- real peers


@pytest.mark.parametrize("seed", range(3))
async def test_cancelled_send_into_rb_tells_it_and_the_port_works_after(
    pty_cable: PtyCable, tmp_path: Path, seed: int
) -> None:
    data = random.Random(seed).randbytes(8 * 1024)
    stop_at = random.Random(seed).randrange(3, 7) * 1024  # not block 1: rb flushes after its "C"
    scope = trio.CancelScope()

    def progress(p: TransferProgress) -> None:
        if p.done >= stop_at:
            scope.cancel()  # lands in the next wait or send, wherever that is

    with trio.fail_after(90):
        async with await open_serial_port(pty_cable.a) as port:
            async with lrzsz(pty_cable, "rb", cwd=tmp_path / "rb1") as rb:
                with scope:
                    await ymodem_send(port, [("f", data)], progress=progress)
                    pytest.fail("the transfer ended before the cancel")  # pragma: no cover
                # Told: rb gives up now, not after its own timeouts (10 s each, 10
                # times). lrzsz's rb can lose the CANs when the cut-off block reaches
                # it first: it purges its input after a bad block, then sits out a
                # timeout (seen once in CI). That case shows in its log as a retry.
                with trio.move_on_after(5):
                    assert await rb.process.wait() != 0
                if rb.process.returncode is None:
                    assert "TIMEOUT" in rb.output(), rb.output()
            async with lrzsz(pty_cable, "rb", cwd=tmp_path / "rb2") as rb:
                await ymodem_send(port, [("f", data)])
                assert await rb.wait() == 0, rb.output()
    assert (tmp_path / "rb2" / "f").read_bytes() == data


@pytest.mark.parametrize("seed", range(3))
async def test_cancelled_receive_from_sb_tells_it_keeps_the_part_and_the_port_works_after(
    pty_cable: PtyCable, tmp_path: Path, seed: int
) -> None:
    data = random.Random(seed).randbytes(512 * 1024)
    source = tmp_path / "f.bin"
    source.write_bytes(data)
    seen: list[TransferProgress] = []
    scope = trio.CancelScope()
    stop_at = random.Random(seed).randrange(1, 400) * 1024

    def progress(p: TransferProgress) -> None:
        seen.append(p)
        if p.done >= stop_at:
            scope.cancel()

    out = tmp_path / "out"
    out.mkdir()
    with trio.fail_after(90):
        async with await open_serial_port(pty_cable.a) as port:
            async with lrzsz(pty_cable, "sb", str(source), cwd=tmp_path / "sb1") as sb:
                with scope:
                    await ymodem_receive(port, out, progress=progress)
                assert await sb.wait(5) != 0
            assert (out / "f.bin.part").read_bytes() == data[: seen[-1].done]
            assert not (out / "f.bin").exists()
            async with lrzsz(pty_cable, "sb", str(source), cwd=tmp_path / "sb2") as sb:
                assert await ymodem_receive(port, out) == [out / "f.bin"]
                assert await sb.wait() == 0
    assert (out / "f.bin").read_bytes() == data
