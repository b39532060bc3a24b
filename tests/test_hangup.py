"""A hangup is end of stream on every front end, never an error.

Linux answers a tty read with ``EIO`` from the moment the other side of a pty
starts to close until the hangup is complete; only then do reads return
``b""``. A receiver woken in that window used to see
``BrokenResourceError(EIO)``. Two tests show it:

* the field scenario: a socat pty pair killed again and again while a task
  waits to receive. The window is a few microseconds of kernel time, so
  before the fix this failed once in 500 to 3,000 kills on a 2-core machine
  (measured on Trio and on anyio; the field saw 3 to 5 in 1,000): a bounded
  run of 300 kills per front end catches a regression only sometimes;
* the deterministic one, at the seam: the port core on the master side of a
  pty whose slave was closed. There ``EIO`` is what every read gets (the
  master is never hung up the way a slave is), with the hangup visible to
  ``poll``, exactly as in the window above. Before the fix it failed every
  time.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
import anyio.abc
import pytest
import trio
from anyio_helpers import BACKENDS, run, wait_until

import trioserial
import trioserial.anyio
from trioserial._port import TtyPort
from trioserial._settings import SerialSettings

KILLS = 300


async def start_socat(a: Path, b: Path) -> anyio.abc.Process:
    """socat joining two ptys linked at *a* and *b*, once it is moving data."""
    process = await anyio.open_process(
        ["socat", "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert process.stderr is not None
    log = b""
    while b"starting data transfer loop" not in log:
        chunk = await process.stderr.receive()
        log += chunk
    return process


async def kill_while_receiving(
    tmp_path: Path,
    open_port: Callable[[str], Awaitable[Any]],
    receive: Callable[[Any], Awaitable[object]],
) -> None:
    """Kill socat *KILLS* times, each time while a task waits in *receive*;
    *receive* returns what end of stream looks like on its front end."""
    a, b = tmp_path / "a", tmp_path / "b"
    with anyio.fail_after(60):
        for kill in range(KILLS):
            process = await start_socat(a, b)
            try:
                async with await open_port(str(a)) as port:
                    results: list[object] = []

                    async def receiver(port: Any = port, results: list[object] = results) -> None:
                        results.append(await receive(port))

                    async with anyio.create_task_group() as tasks:
                        tasks.start_soon(receiver)
                        # Blocked in the wait, not merely started (anyio's
                        # wait_all_tasks_blocked takes 100 ms per call on asyncio).
                        await wait_until(lambda: port.statistics().tasks_waiting_receive == 1)
                        process.send_signal(signal.SIGKILL)
                    assert results == ["end of stream"], f"kill {kill}: {results}"
            finally:
                if process.returncode is None:
                    process.kill()
                await process.wait()
                assert process.stderr is not None
                await process.stderr.aclose()


async def trio_receive(port: trioserial.AsyncSerial) -> object:
    data = await port.receive_some()
    return "end of stream" if data == b"" else data


async def anyio_receive(port: trioserial.anyio.AnyioSerialStream) -> object:
    try:
        return await port.receive()
    except anyio.EndOfStream:
        return "end of stream"


@pytest.mark.deadline(60)  # 300 socat processes
async def test_killed_peer_is_end_of_stream_on_trio(tmp_path: Path) -> None:
    await kill_while_receiving(tmp_path, trioserial.open_serial_port, trio_receive)


@pytest.mark.parametrize("backend", BACKENDS)
def test_killed_peer_is_end_of_stream_on_anyio(tmp_path: Path, backend: str) -> None:
    run(
        backend,
        kill_while_receiving,
        tmp_path,
        trioserial.anyio.open_serial_port,
        anyio_receive,
    )


def master_core_after_the_slave_closed(last_words: bytes) -> TtyPort:
    """A port core on a pty master whose slave wrote *last_words* and closed.

    Its reads give the bytes, then ``EIO`` for good, and ``poll`` reports
    the hangup: the kernel's state in the window described above.
    """
    master, slave = os.openpty()
    os.write(slave, last_words)
    os.close(slave)
    os.set_blocking(master, False)
    return TtyPort(master, "pty master", SerialSettings(exclusive=False))


def test_the_seam_really_gives_eio() -> None:
    core = master_core_after_the_slave_closed(b"")
    try:
        with pytest.raises(OSError, match="Input/output error"):
            os.read(core.fileno(), 10)
    finally:
        core.close()


async def test_eio_at_hangup_is_end_of_stream_on_trio() -> None:
    with trio.fail_after(10):
        async with trioserial.AsyncSerial(master_core_after_the_slave_closed(b"bye")) as port:
            assert await port.receive_some() == b"bye"  # data first, nothing lost
            assert await port.receive_some() == b""
            assert await port.receive_some() == b""  # and it stays so
            with pytest.raises(trio.EndOfChannel):
                await port.receive()


@pytest.mark.parametrize("backend", BACKENDS)
def test_eio_at_hangup_is_end_of_stream_on_anyio(backend: str) -> None:
    async def main() -> None:
        core = master_core_after_the_slave_closed(b"bye")
        with anyio.fail_after(10):
            async with trioserial.anyio.AnyioSerialStream(core) as port:
                assert await port.receive() == b"bye"
                for _ in range(2):
                    with pytest.raises(anyio.EndOfStream):
                        await port.receive()

    run(backend, main)
