"""``trioserial send`` / ``trioserial receive`` as a user runs them, against lrzsz on a pty pair."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio
from lrzsz_peers import PtyCable, lrzsz, pty_cable, write_all

from trioserial import open_serial_port
from trioserial._cli_transfer import Progress
from trioserial.transfer import (
    TransferCancelledError,
    TransferProgress,
    ymodem_receive,
    zmodem_receive,
)

# Real lrzsz peers and whole transfers: more than the suite's default 20 s
# per-test deadline on a loaded 2-core machine (each test has its own fail_after).
pytestmark = pytest.mark.deadline(180)

__all__ = ["pty_cable"]

ROOT = Path(__file__).resolve().parent.parent
Receive = Callable[..., Awaitable[list[Path]]]


async def cli(*args: str, stderr: Path) -> trio.Process:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with stderr.open("wb") as errors:
        return await trio.lowlevel.open_process(
            [sys.executable, "-m", "trioserial", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=env,
        )


@pytest.mark.parametrize(
    ("protocol", "receiver", "sender"),
    [("ymodem", ["rb"], ["sb"]), ("zmodem", ["rz", "-b"], ["sz", "-b"])],
)
async def test_send_a_batch_then_receive_it_back(
    protocol: str, receiver: list[str], sender: list[str], pty_cable: PtyCable, tmp_path: Path
) -> None:
    files = {
        "a.bin": random.Random(1).randbytes(3000) + b"\x18\x11\x13\x1a",  # CAN, XON, XOFF, SUB
        "b.txt": b"hello\n",
    }
    paths = [str(p) for p in write_all(tmp_path / "src", files)]
    protocol_option = ("--protocol", protocol)
    log = tmp_path / "send.err"
    with trio.fail_after(60):
        async with lrzsz(pty_cable, *receiver, cwd=tmp_path / "peer-in") as peer:
            process = await cli("send", pty_cable.a, *paths, *protocol_option, stderr=log)
            assert await process.wait() == 0, log.read_text()
            assert await peer.wait() == 0, peer.output()
    for name, data in files.items():
        assert (tmp_path / "peer-in" / name).read_bytes() == data
    lines = log.read_text().splitlines()
    assert [line.split(":")[0] for line in lines] == list(files)  # one line per file, no tty
    out = tmp_path / "back"
    out.mkdir()
    log = tmp_path / "receive.err"
    with trio.fail_after(60):
        async with lrzsz(pty_cable, *sender, *paths, cwd=tmp_path / "peer-out") as peer:
            process = await cli("receive", pty_cable.a, str(out), *protocol_option, stderr=log)
            assert await process.wait() == 0, log.read_text()
            assert await peer.wait() == 0, peer.output()
    for name, data in files.items():
        assert (out / name).read_bytes() == data


async def test_zmodem_receive_resume_continues_a_part_file(
    pty_cable: PtyCable, tmp_path: Path
) -> None:
    """``--resume`` keeps the ``.part`` an interrupted receive left and asks ``sz`` for the rest."""
    data = random.Random(3).randbytes(200_000)
    write_all(tmp_path / "src", {"big.bin": data})
    out = tmp_path / "out"
    out.mkdir()
    # A prefix of the file, with a wrong tail byte: a resumed receive keeps the
    # .part as it is (ZMODEM resumes by length), so the wrong byte survives
    # only if the CLI really resumed rather than starting the file again.
    part = bytearray(data[:50_000])
    part[-1] ^= 0xFF
    (out / "big.bin.part").write_bytes(part)
    log = tmp_path / "receive.err"
    with trio.fail_after(60):
        async with lrzsz(pty_cable, "sz", "-b", "big.bin", cwd=tmp_path / "src") as sz:
            process = await cli(
                "receive", pty_cable.a, str(out), "--protocol", "zmodem", "--resume", stderr=log
            )
            assert await process.wait() == 0, log.read_text()
            assert await sz.wait() == 0, sz.output()
    assert (out / "big.bin").read_bytes() == bytes(part) + data[50_000:]


@pytest.mark.parametrize(
    ("protocol", "receive"), [("ymodem", ymodem_receive), ("zmodem", zmodem_receive)]
)
async def test_ctrl_c_cancels_tells_the_receiver_and_exits_130(
    protocol: str, receive: Receive, pty_cable: PtyCable, tmp_path: Path
) -> None:
    """SIGINT mid-transfer: exit 130, and the receiver hears the cancel at once.

    The receiver here is ours, on the cable's other end, because it reports
    what it heard: lrzsz's rb flushes its input after each "C" and sometimes
    sat out its 10 s timeout instead (seen in about a third of the runs).
    """
    size = 4 * 1024 * 1024
    big = tmp_path / "big.bin"
    big.write_bytes(random.Random(2).randbytes(size))
    out = tmp_path / "out"
    out.mkdir()
    log = tmp_path / "send.err"
    under_way = trio.Event()

    def progress(p: TransferProgress) -> None:
        if p.done >= 64 * 1024:
            under_way.set()

    with trio.fail_after(60):
        async with await open_serial_port(pty_cable.b) as device, trio.open_nursery() as nursery:
            process = await cli("send", pty_cable.a, str(big), "--protocol", protocol, stderr=log)

            async def interrupt() -> None:
                await under_way.wait()
                process.send_signal(signal.SIGINT)

            nursery.start_soon(interrupt)
            with pytest.raises(TransferCancelledError, match="sender cancelled"):
                await receive(device, out, progress=progress, timeout=5)
            assert await process.wait() == 130, log.read_bytes()
    assert len((out / "big.bin.part").read_bytes()) < size


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["send", "/dev/null", "a", "b", "--protocol", "xmodem"], "xmodem sends one file"),
        (["receive", "/dev/null", "--protocol", "xmodem"], "give the FILE to write"),
        (["receive", "/dev/null", "x", "--size", "3"], "--size is for xmodem"),
        (["send", "/dev/null", "a", "--timeout", "-1"], "--timeout must be a positive"),
        (["send", "/dev/null", "a", "--resume"], "--resume is for zmodem"),
        (["receive", "/dev/null", "x", "--protocol", "zmodem"], "zmodem receives into a dir"),
        (["receive", "/dev/null", "--protocol", "zmodem", "--size", "3"], "--size is for xmodem"),
    ],
)
def test_usage_errors(args: list[str], message: str, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "trioserial", *args],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert message in result.stderr


def test_progress_bar_on_a_terminal_and_lines_otherwise() -> None:
    class Out:
        text = ""

        def write(self, s: str) -> None:
            self.text += s

        def flush(self) -> None:
            pass

    clock = iter([0.0, 1.0, 2.0])
    out = Out()
    bar = Progress(out, True, clock=lambda: next(clock))  # type: ignore[arg-type]
    bar(TransferProgress("f", 0, 2048))
    bar(TransferProgress("f", 1024, 2048))
    bar(TransferProgress("f", 2048, 2048))
    assert "f [##########          ]  50% 1.0 KiB 1.0 KiB/s ETA 0:01" in out.text
    assert out.text.endswith("\r\x1b[Kf: 2048 bytes in 2.0 s (1.0 KiB/s)\n")
    out = Out()
    lines = Progress(out, False, clock=lambda: 1.0)  # type: ignore[arg-type]
    lines(TransferProgress("f", 1024, 2048))
    lines(TransferProgress("f", 2048, 2048))
    assert out.text.startswith("f: 2048 bytes in 0.0 s")
    assert out.text.count("\n") == 1
