"""Our ZMODEM against lrzsz (``sz``/``rz``) on a socat pty pair, both directions.

Files: empty, one byte, 1 MB of random bytes, and bytes full of what ZMODEM
must escape (ZDLE, XON, XOFF, DLE, ``@`` CR), in one session; resume after a
transfer cancelled half way. 16 MB runs are for ``benchmarks/zmodem.py``.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest
import trio
from lrzsz_peers import Peer, PtyCable, lrzsz, pty_cable, write_all

from trioserial import AsyncSerial, open_serial_port
from trioserial.transfer import TransferProgress, zmodem_receive, zmodem_send

# Real lrzsz peers and whole transfers: more than the suite's default 20 s
# per-test deadline on a loaded 2-core machine (each test has its own fail_after).
pytestmark = pytest.mark.deadline(180)

__all__ = ["pty_cable"]

MB = 1 << 20


def files() -> dict[str, bytes]:
    return {
        "empty.bin": b"",
        "one.bin": b"\x42",
        "escapes.bin": bytes([0x18, 0x11, 0x13, 0x91, 0x93, 0x10, 0x90, 0x40, 0x0D, 0x8D]) * 20_000,
        "random.bin": random.Random(17).randbytes(MB),
    }


async def drain_until_exit(port: AsyncSerial, peer: Peer) -> int:
    async with trio.open_nursery() as nursery:

        async def drain() -> None:
            while await port.receive_some():
                pass

        nursery.start_soon(drain)
        status = await peer.wait(10)
        nursery.cancel_scope.cancel()
    return status


async def drain_quiet(port: AsyncSerial) -> bytes:
    """What the port still receives until it is quiet for half a second (rz's last words)."""
    got = bytearray()
    while True:
        with trio.move_on_after(0.5):
            got += await port.receive_some()
            continue
        return bytes(got)


def read_all(directory: Path, names: object) -> dict[str, bytes]:
    return {name: (directory / name).read_bytes() for name in names}  # type: ignore[attr-defined]


async def test_zmodem_send_a_session_into_rz(pty_cable: PtyCable, tmp_path: Path) -> None:
    contents = files()
    sources = write_all(tmp_path / "src", contents)
    seen: list[TransferProgress] = []
    with trio.fail_after(120):
        async with (
            await open_serial_port(pty_cable.a) as port,
            lrzsz(pty_cable, "rz", "-b", cwd=tmp_path / "dst") as rz,
        ):
            await zmodem_send(port, sources, progress=seen.append)
            assert await rz.wait() == 0, rz.output()
    assert read_all(tmp_path / "dst", contents) == contents
    ends = [p for p in seen if p.done == p.total]
    assert [p.name for p in ends][-1] == "random.bin"
    assert seen[-1] == TransferProgress("random.bin", MB, MB)
    assert (tmp_path / "dst" / "random.bin").stat().st_mtime == int(sources[-1].stat().st_mtime)


async def test_sz_sends_a_session_into_zmodem_receive(pty_cable: PtyCable, tmp_path: Path) -> None:
    contents = files()
    write_all(tmp_path / "src", contents)
    seen: list[TransferProgress] = []
    (tmp_path / "dst").mkdir()
    with trio.fail_after(120):
        async with (
            await open_serial_port(pty_cable.a) as port,
            lrzsz(pty_cable, "sz", "-b", *contents, cwd=tmp_path / "src") as sz,
        ):
            got = await zmodem_receive(port, tmp_path / "dst", progress=seen.append)
            assert await sz.wait() == 0, sz.output()
    assert [p.name for p in got] == list(contents)
    assert read_all(tmp_path / "dst", contents) == contents
    assert seen[-1] == TransferProgress("random.bin", MB, MB)
    assert not list((tmp_path / "dst").glob("*.part"))


# -e: escape every control character (what a line that eats them needs); -8: 8 KiB
# subpackets; -w: a window of unacknowledged data; -l: a frame length; -B: rz's buffer.
@pytest.mark.parametrize("options", [["-e"], ["-8"], ["-w", "8192"], ["-l", "512"]])
async def test_sz_options_into_zmodem_receive(
    pty_cable: PtyCable, tmp_path: Path, options: list[str]
) -> None:
    contents = {"all.bin": bytes(range(256)) * 1200}
    write_all(tmp_path / "src", contents)
    (tmp_path / "dst").mkdir()
    with trio.fail_after(60):
        async with (
            await open_serial_port(pty_cable.a) as port,
            lrzsz(pty_cable, "sz", *options, "-b", "all.bin", cwd=tmp_path / "src") as sz,
        ):
            await zmodem_receive(port, tmp_path / "dst")
            assert await sz.wait() == 0, sz.output()
    assert read_all(tmp_path / "dst", contents) == contents


@pytest.mark.parametrize("options", [["-e"], ["-w", "4096"], ["-B", "4096"]])
async def test_zmodem_send_into_rz_with_options(
    pty_cable: PtyCable, tmp_path: Path, options: list[str]
) -> None:
    contents = {"all.bin": bytes(range(256)) * 1200}
    sources = write_all(tmp_path / "src", contents)
    with trio.fail_after(60):
        async with (
            await open_serial_port(pty_cable.a) as port,
            lrzsz(pty_cable, "rz", *options, "-b", cwd=tmp_path / "dst") as rz,
        ):
            await zmodem_send(port, sources)
            assert await rz.wait() == 0, rz.output()
    assert read_all(tmp_path / "dst", contents) == contents


async def test_receive_resumes_after_a_cancelled_transfer(
    pty_cable: PtyCable, tmp_path: Path
) -> None:
    data = random.Random(5).randbytes(MB)
    write_all(tmp_path / "src", {"big.bin": data})
    dst = tmp_path / "dst"
    dst.mkdir()
    first: list[TransferProgress] = []
    with trio.fail_after(60):
        async with await open_serial_port(pty_cable.a) as port:
            async with lrzsz(pty_cable, "sz", "-b", "big.bin", cwd=tmp_path / "src") as sz:
                with trio.CancelScope() as scope:

                    def cancel_half_way(p: TransferProgress) -> None:
                        first.append(p)
                        if p.done >= MB // 2:
                            scope.cancel()

                    await zmodem_receive(port, dst, progress=cancel_half_way)
                assert scope.cancelled_caught
                # sz streams; it reads our CANs once the writes it is blocked in go
                # through: drain what it still sends until it gives up (at once, not
                # after its own timeout).
                assert await drain_until_exit(port, sz) != 0
                # sz's own abort sequence, written as it exits, can still be on
                # its way through socat: a receive that read it would stop at
                # once as cancelled by the sender (seen once in CI).
                await drain_quiet(port)
            part = dst / "big.bin.part"
            held = part.stat().st_size
            assert MB // 2 <= held < MB
            assert part.read_bytes() == data[:held]
            second: list[TransferProgress] = []
            async with lrzsz(pty_cable, "sz", "-b", "big.bin", cwd=tmp_path / "src") as sz:
                got = await zmodem_receive(port, dst, progress=second.append, resume=True)
                assert await sz.wait() == 0, sz.output()
    assert got == [dst / "big.bin"]
    assert (dst / "big.bin").read_bytes() == data
    assert second[0] == TransferProgress("big.bin", held, MB)  # continued, not restarted
    # And once complete, a third offer of the same file is skipped.
    with trio.fail_after(60):
        async with (
            await open_serial_port(pty_cable.a) as port,
            lrzsz(pty_cable, "sz", "-b", "big.bin", cwd=tmp_path / "src") as sz,
        ):
            third: list[TransferProgress] = []
            assert await zmodem_receive(port, dst, progress=third.append, resume=True) == []
            assert await sz.wait() == 0, sz.output()
    assert third == [TransferProgress("big.bin", MB, MB)]


async def test_send_resumes_into_rz_r(pty_cable: PtyCable, tmp_path: Path) -> None:
    data = random.Random(6).randbytes(MB)
    (source,) = write_all(tmp_path / "src", {"big.bin": data})
    dst = tmp_path / "dst"
    write_all(dst, {"big.bin": data[:300_000]})  # what an interrupted rz left
    seen: list[TransferProgress] = []
    with trio.fail_after(60):
        async with (
            await open_serial_port(pty_cable.a) as port,
            lrzsz(pty_cable, "rz", "-b", "-r", cwd=dst) as rz,
        ):
            await zmodem_send(port, [source], progress=seen.append, resume=True)
            assert await rz.wait() == 0, rz.output()
    assert (dst / "big.bin").read_bytes() == data
    assert 0 < seen[0].done <= 300_000  # rz -r: where it holds whole kilobytes
    assert seen[0].total == MB


async def test_cancelled_send_tells_rz_and_the_port_is_usable(
    pty_cable: PtyCable, tmp_path: Path
) -> None:
    data = random.Random(7).randbytes(MB)
    (source,) = write_all(tmp_path / "src", {"big.bin": data})
    with trio.fail_after(60):
        async with await open_serial_port(pty_cable.a) as port:
            async with lrzsz(pty_cable, "rz", "-b", cwd=tmp_path / "dst") as rz:
                with trio.CancelScope() as scope:

                    def cancel_at_first_ack(p: TransferProgress) -> None:
                        if p.done:
                            scope.cancel()

                    await zmodem_send(port, [source], progress=cancel_at_first_ack)
                assert scope.cancelled_caught
                assert await rz.wait(10) != 0  # told by the CANs, it stops at once
                assert re.search("Sender Cancell?ed", rz.output()), rz.output()
            # rz answers an abort with its own CANs: the next command reads past them.
            # Not asserted: on its way out rz drains and flushes its tty (tcdrain, then
            # tcflush TCIOFLUSH), and on a pty tcdrain does not wait for the reader, so
            # the flush can discard CANs socat has not copied yet. A UART sends them.
            await drain_quiet(port)
            async with lrzsz(pty_cable, "rz", "-b", "-y", cwd=tmp_path / "dst2") as rz:
                await zmodem_send(port, [source])
                assert await rz.wait() == 0, rz.output()
    assert (tmp_path / "dst2" / "big.bin").read_bytes() == data


async def test_sz_r_resumes_into_zmodem_receive_without_resume(
    pty_cable: PtyCable, tmp_path: Path
) -> None:
    # The sender asks (ZCRESUM; -r after -b, which would set ZCBIN again): the receiver
    # resumes its .part though resume=False.
    data = random.Random(9).randbytes(MB)
    write_all(tmp_path / "src", {"big.bin": data})
    dst = tmp_path / "dst"
    write_all(dst, {"big.bin.part": data[:400_000]})
    seen: list[TransferProgress] = []
    with trio.fail_after(60):
        async with (
            await open_serial_port(pty_cable.a) as port,
            lrzsz(pty_cable, "sz", "-b", "-r", "big.bin", cwd=tmp_path / "src") as sz,
        ):
            assert await zmodem_receive(port, dst, progress=seen.append) == [dst / "big.bin"]
            assert await sz.wait() == 0, sz.output()
    assert (dst / "big.bin").read_bytes() == data
    assert seen[0] == TransferProgress("big.bin", 400_000, MB), seen[:2]


async def test_sz_of_a_proc_file_whose_announced_size_is_0(
    pty_cable: PtyCable, tmp_path: Path
) -> None:
    # sz announces stat()'s size: 0 for /proc, whose files only have a length once read.
    # Data past an announced size is refused, but a 0 is no size at all: the file arrives.
    (tmp_path / "dst").mkdir()
    with trio.fail_after(60):
        async with (
            await open_serial_port(pty_cable.a) as port,
            lrzsz(pty_cable, "sz", "-b", "/proc/version", cwd=tmp_path) as sz,
        ):
            got = await zmodem_receive(port, tmp_path / "dst")
            assert await sz.wait() == 0, sz.output()
    assert got == [tmp_path / "dst" / "version"]
    assert await trio.Path(got[0]).read_bytes() == await trio.Path("/proc/version").read_bytes()
