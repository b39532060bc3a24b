"""Keep talking to a board through an unplug and a replug, with PySerial.run.

socat plays the USB serial adapter: it makes two ptys, one linked at
``board`` (the port we supervise) and one at ``host`` (the board's side).
Killing socat is the unplug (the link vanishes, our fd hangs up); starting it
again with the same links is the replug.

Run it:  python examples/supervised_reconnect.py   (needs socat)
"""

from __future__ import annotations

import functools
import subprocess
import tempfile
from pathlib import Path

import trio

import trioserial
from trioserial import SupervisedStream


async def plug_in(board: Path, host: Path) -> trio.Process:
    """Start socat, and return once both pty links exist."""
    proc = await trio.lowlevel.open_process(
        ["socat", "-d", "-d", f"pty,raw,echo=0,link={board}", f"pty,raw,echo=0,link={host}"],
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    log = b""
    while b"starting data transfer loop" not in log:  # socat's "ready" line
        chunk = await proc.stderr.receive_some()
        if not chunk:
            raise RuntimeError(f"socat failed: {log.decode(errors='replace')}")
        log += chunk
    return proc


async def unplug(proc: trio.Process) -> None:
    proc.terminate()
    await proc.wait()
    if proc.stderr is not None:
        await proc.stderr.aclose()


async def show_state(port: SupervisedStream) -> None:
    """What an application would do with the published state: log it."""
    error_before = port.last_error.value
    async for connected in port.connected.eventual_values():
        if connected:
            error_before = port.last_error.value
            print(f"  [state] connected to {port.path} (connection #{port.connect_count})")
        elif port.last_error.value is not error_before:
            print(f"  [state] disconnected: {port.last_error.value}")
        else:
            print("  [state] disconnected")


async def read_line(port: SupervisedStream) -> bytes:
    line = b""
    while not line.endswith(b"\n"):
        line += await port.receive(1)
    return line


async def talk(port: SupervisedStream, host: Path, greeting: bytes) -> None:
    """The board says something; we answer; the board hears it."""
    async with await trioserial.open_serial_port(host) as board:
        await board.send_all(greeting)
        print(f"received {await read_line(port)!r}")
        await port.send_all(b"ack\n")
        answer = b""
        while not answer.endswith(b"\n"):
            answer += await board.receive()
        print(f"the board got {answer!r}")


async def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        board, host = Path(tmp) / "board", Path(tmp) / "host"
        socat = await plug_in(board, host)
        try:
            # Configure once; the port may come and go for the life of the program.
            driver = trioserial.PySerial(board, baudrate=115200, check_present=False)
            with trio.fail_after(20):
                async with trio.open_nursery() as nursery:
                    port = await nursery.start(
                        functools.partial(driver.run, initial_backoff=0.05, max_backoff=1.0)
                    )
                    nursery.start_soon(show_state, port)
                    await talk(port, host, b"hello from the board\n")

                    print("unplugging the adapter")
                    await unplug(socat)
                    await port.connected.wait_value(False)

                    print("plugging it back in")
                    socat = await plug_in(board, host)
                    await port.connected.wait_value(True)
                    await talk(port, host, b"the board rebooted\n")

                    driver.close()  # ends run(): the fd is closed when close() returns
                    nursery.cancel_scope.cancel()  # and the state logger
        finally:
            await unplug(socat)
    print("done")


if __name__ == "__main__":
    trio.run(main)
