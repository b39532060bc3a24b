"""Our X/YMODEM against lrzsz (``sx rx sb rb``) on a socat pty pair, every direction and mode.

Sizes: empty, one byte, exactly one block, one block and one byte, data
ending in 0x1A, and 1 MB of random bytes. lrzsz's receivers are slow on a
pty (``rb`` takes seconds per 100 KB here, stop-and-wait with its own
timers), so the 1 MB runs go where lrzsz sends (``sb``, ``sx -k``) and our
receiver is measured; our sender gets 16 KB into ``rb``/``rx``. The speed
itself is for ``benchmarks/transfer.py``, not for assertions here.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
import trio
from lrzsz_peers import PtyCable, lrzsz, pty_cable, write_all

from trioserial import open_serial_port
from trioserial.transfer import (
    TransferProgress,
    TransferTimeoutError,
    xmodem_receive,
    xmodem_send,
    ymodem_receive,
    ymodem_send,
)

# Real lrzsz peers and whole transfers: more than the suite's default 20 s
# per-test deadline on a loaded 2-core machine (each test has its own fail_after).
pytestmark = pytest.mark.deadline(180)

__all__ = ["pty_cable"]

MB = 1 << 20


def files_of(block: int) -> dict[str, bytes]:
    rng = random.Random(block)
    return {
        "empty.bin": b"",
        "one.bin": b"\x42",
        "block.bin": rng.randbytes(block),
        "block1.bin": rng.randbytes(block + 1),
        "ends-1a.bin": b"data" + b"\x1a" * 5,
    }


async def test_ymodem_send_a_batch_into_rb(pty_cable: PtyCable, tmp_path: Path) -> None:
    files = files_of(1024) | {"random.bin": random.Random(1).randbytes(16 * 1024)}
    sources = write_all(tmp_path / "src", files)
    seen: list[TransferProgress] = []
    with trio.fail_after(120):
        async with (
            await open_serial_port(pty_cable.a) as port,
            lrzsz(pty_cable, "rb", cwd=tmp_path / "rb") as rb,
        ):
            await ymodem_send(port, sources, progress=seen.append)
            assert await rb.wait() == 0, rb.output()
    for name, data in files.items():
        assert (tmp_path / "rb" / name).read_bytes() == data, name
    ends = [p for p in seen if p.done == p.total]
    assert {p.name for p in ends} == set(files)


async def test_ymodem_receive_a_batch_from_sb(pty_cable: PtyCable, tmp_path: Path) -> None:
    files = files_of(1024) | {"megabyte.bin": random.Random(2).randbytes(MB)}
    sources = write_all(tmp_path / "src", files)
    out = tmp_path / "out"
    out.mkdir()
    seen: list[TransferProgress] = []
    with trio.fail_after(120):
        async with (
            await open_serial_port(pty_cable.a) as port,
            lrzsz(pty_cable, "sb", *map(str, sources), cwd=tmp_path / "sb") as sb,
        ):
            received = await ymodem_receive(port, out, progress=seen.append)
            assert await sb.wait() == 0, sb.output()
    assert received == [out / name for name in files]
    for name, data in files.items():
        assert (out / name).read_bytes() == data, name
    assert not list(out.glob("*.part"))
    assert seen[-1] == TransferProgress("megabyte.bin", MB, MB)


async def test_ymodem_receive_from_sb_of_a_proc_file_whose_announced_size_is_0(
    pty_cable: PtyCable, tmp_path: Path
) -> None:
    # sb announces stat()'s size, 0 for /proc: a 0 followed by data is no size at all,
    # and the file keeps the padding of its last block (YMODEM cannot tell it from data).
    out = tmp_path / "out"
    out.mkdir()
    with trio.fail_after(60):
        async with (
            await open_serial_port(pty_cable.a) as port,
            lrzsz(pty_cable, "sb", "/proc/version", cwd=tmp_path / "sb") as sb,
        ):
            assert await ymodem_receive(port, out) == [out / "version"]
            assert await sb.wait() == 0, sb.output()
    text = await trio.Path("/proc/version").read_bytes()
    got = (out / "version").read_bytes()
    assert got[: len(text)] == text
    assert set(got[len(text) :]) <= {0x1A}


MODES = [(128, False), (1024, True)]


def xmodem_files(block: int) -> dict[str, bytes]:
    """:func:`files_of` without the empty file: lrzsz cannot do that over XMODEM.

    ``sx empty.bin`` into ``rx`` hangs in sx after rx reports success (checked
    on this machine), and rx answers our lone EOT the same way. An empty file
    over XMODEM is tested ours-to-ours (tests/test_transfer.py).
    """
    files = files_of(block)
    del files["empty.bin"]
    return files


@pytest.mark.parametrize(("block_size", "crc"), MODES, ids=["xmodem-checksum", "xmodem1k-crc"])
async def test_xmodem_send_into_rx(
    pty_cable: PtyCable, tmp_path: Path, block_size: int, crc: bool
) -> None:
    files = xmodem_files(block_size) | {"random.bin": random.Random(3).randbytes(16 * 1024)}
    with trio.fail_after(120):
        async with await open_serial_port(pty_cable.a) as port:
            for name, data in files.items():
                args = ("rx", "-c", name) if crc else ("rx", name)
                async with lrzsz(pty_cable, *args, cwd=tmp_path / "rx") as rx:
                    try:
                        sent = await xmodem_send(port, data, block_size=block_size, timeout=5)
                    except TransferTimeoutError as exc:
                        # rx ACKs the EOT and exits at once; restoring its tty can
                        # discard that ACK before socat reads it (about one run in
                        # two here). The sender cannot know; the file must be whole.
                        assert "the end of the file" in str(exc)  # noqa: PT017
                    else:
                        assert sent == len(data)
                    assert await rx.wait() == 0, rx.output()
                got = (tmp_path / "rx" / name).read_bytes()
                # XMODEM pads the last block: lrzsz keeps the padding.
                assert got[: len(data)] == data, name
                assert set(got[len(data) :]) <= {0x1A}, name


@pytest.mark.parametrize(("block_size", "crc"), MODES, ids=["xmodem-checksum", "xmodem1k-crc"])
async def test_xmodem_receive_from_sx(
    pty_cable: PtyCable, tmp_path: Path, block_size: int, crc: bool
) -> None:
    files = xmodem_files(block_size)
    if crc:
        files["megabyte.bin"] = random.Random(4).randbytes(MB)
    paths = write_all(tmp_path / "src", files)
    with trio.fail_after(120):
        async with await open_serial_port(pty_cable.a) as port:
            for path in paths:
                data = path.read_bytes()
                args = ("sx", "-k", str(path)) if block_size == 1024 else ("sx", str(path))
                target = tmp_path / "out" / path.name
                target.parent.mkdir(exist_ok=True)
                async with lrzsz(pty_cable, *args, cwd=tmp_path / "sx") as sx:
                    written = await xmodem_receive(port, target, crc=crc, size=len(data))
                    assert await sx.wait() == 0, sx.output()
                assert written == len(data)
                assert target.read_bytes() == data, path.name


async def test_xmodem_receive_without_size_keeps_the_padding(
    pty_cable: PtyCable, tmp_path: Path
) -> None:
    (source,) = write_all(tmp_path / "src", {"a.bin": b"abc"})
    target = tmp_path / "a.out"
    with trio.fail_after(30):
        async with (
            await open_serial_port(pty_cable.a) as port,
            lrzsz(pty_cable, "sx", str(source), cwd=tmp_path / "sx") as sx,
        ):
            assert await xmodem_receive(port, target) == 128
            assert await sx.wait() == 0
    assert target.read_bytes() == b"abc" + b"\x1a" * 125
