"""``trioserial.anyio.Expect`` on both anyio backends: against ``trioserial sim shell``
(the CLI's simulated device, a separate process behind a real pty) and against
pty pairs, with cancellation at random points, including asyncio's own.

Sync tests calling :func:`anyio.run` per backend (``anyio_helpers`` says why).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import anyio.abc
import anyio.lowlevel
import pytest
from anyio.streams.buffered import BufferedByteReceiveStream
from anyio_helpers import BACKENDS, pending, pty_pair, run, wait_until

import trioserial
from trioserial import ExpectBufferFullError, ExpectError
from trioserial.anyio import Expect, ExpectEOFError, ExpectTimeoutError, open_serial_port

ROOT = Path(__file__).resolve().parent.parent
#: Upper bound for anything a test waits for; a healthy run takes a fraction.
DEADLINE = 20


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Sim:
    """A running ``trioserial sim KIND`` process and the path it serves."""

    def __init__(self, process: anyio.abc.Process, path: str) -> None:
        self.process = process
        self.path = path
        self.stopped = False

    def unplug(self) -> None:
        """Stop the simulation: it closes the pty, so the port sees a hangup.

        Once only: a second SIGINT could land after the interpreter has put
        back the default handler on its way out, and kill it (exit -2).
        """
        if not self.stopped:
            self.stopped = True
            self.process.send_signal(signal.SIGINT)


@asynccontextmanager
async def sim(kind: str, link: Path) -> AsyncIterator[Sim]:
    """Run ``python -m trioserial sim KIND --link LINK`` until the block ends."""
    process = await anyio.open_process(
        [sys.executable, "-m", "trioserial", "sim", kind, "--link", str(link)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        cwd=ROOT,
    )
    running: Sim | None = None
    async with process:
        try:
            assert process.stdout is not None
            printed = b""
            with anyio.fail_after(DEADLINE):  # the first line is the path, once it is served
                while not printed.endswith(b"\n"):
                    printed += await process.stdout.receive()
            assert printed.decode() == f"{link}\n"
            running = Sim(process, printed.decode().strip())
            yield running
        finally:
            if running is not None:
                running.unplug()
            else:
                process.kill()
            with anyio.CancelScope(shield=True), anyio.fail_after(DEADLINE):
                await process.wait()
    assert process.returncode == 130  # stopped by SIGINT, nothing else
    assert not await anyio.Path(link).is_symlink()


# ------------------------------------------------------- against trioserial sim


def test_a_session_with_the_simulated_shell(backend: str, tmp_path: Path) -> None:
    async def main() -> None:
        async with (
            sim("shell", tmp_path / "ttySIM") as device,
            await open_serial_port(device.path) as port,
        ):
            ex = Expect(port, encoding="utf-8")
            with anyio.fail_after(DEADLINE):
                # The banner was sent before the port was opened: it waited in the pty.
                banner = await ex.expect("$ ")
                assert banner.before == (
                    "FakeOS 1.0 shell (simulated by trioserial); type 'help'\r\n"
                )
                await ex.sendline("echo hello anyio")
                assert (await ex.expect("$ ")).before == "echo hello anyio\r\nhello anyio\r\n"
                await ex.sendline("version")
                found = await ex.expect(
                    ["command not found", re.compile(r"FakeOS (\d+)\.(\d+) \(")]
                )
                assert (found.index, found.match.groups()) == (1, ("1", "0"))
                await ex.expect("$ ")

                # A cancelled wait and a timed-out one consume nothing: wherever
                # the output was when they gave up, the next call sees all of it.
                await ex.sendline("echo kept")
                with anyio.move_on_after(0.01):
                    await ex.expect("never")
                with pytest.raises(ExpectTimeoutError) as info:
                    await ex.expect(["never", "nor this"], timeout=0.01)
                error = info.value
                assert isinstance(error, TimeoutError)
                assert isinstance(error, ExpectError)
                assert str(error).startswith(
                    "timed out after 0.01 s waiting for any of 'never', 'nor this'; "
                    "received and unmatched ("
                )
                everything = "echo kept\r\nkept\r\n$ "
                assert error.received == everything[: len(error.received)]
                assert (await ex.expect("kept\r\n$ ")).before == "echo kept\r\n"

                device.unplug()
                with pytest.raises(ExpectEOFError, match="end of stream while waiting"):
                    await ex.expect("$ ")
                assert ex.eof

    run(backend, main)


def test_the_simulated_modem_in_byte_mode(backend: str, tmp_path: Path) -> None:
    async def main() -> None:
        async with (
            sim("modem", tmp_path / "ttyMODEM") as device,
            await open_serial_port(device.path) as port,
        ):
            ex = Expect(port, line_ending=b"\r")
            with anyio.fail_after(DEADLINE):
                await ex.sendline(b"AT+CSQ")
                found = await ex.expect([b"ERROR\r\n", re.compile(rb"\+CSQ: (\d+),(\d+)")])
                assert found.match.groups() == (b"20", b"99")
                await ex.expect(b"OK\r\n")

    run(backend, main)


# ------------------------------------------------------------ against a pty


def test_patterns_across_receives_text_mode_and_sending(backend: str) -> None:
    async def main() -> None:
        async with pty_pair() as (port, device):
            ex = Expect(port)
            with anyio.fail_after(DEADLINE):
                await device.send(b"xxlog")
                assert (await ex.expect(b"xx")).after == b"xx"
                await device.send(b"in: yy")
                assert (await ex.expect("login: ")).before == b""
                assert (await ex.expect(b"yy")).before == b""
                await ex.sendline("root")
                await ex.send(bytearray(b"\x03"))
                sent = Expect(device)  # the device's side, to read what arrived
                assert (await sent.expect(b"\x03")).before == b"root\r"

            text = Expect(port, encoding="utf-8")
            data = "températur: 21 °C\n".encode()
            split = data.index(b"\xc3") + 1  # in the middle of "é"
            with anyio.fail_after(DEADLINE):
                await device.send(data[:split])
                await device.send(data[split:])
                result = await text.expect(re.compile(r"(\d+) °C"))
            assert (result.before, result.match.group(1)) == ("températur: ", "21")

    run(backend, main)


def test_end_of_stream_keeps_what_was_received(backend: str) -> None:
    async def main() -> None:
        async with pty_pair() as (port, device):
            ex = Expect(port)
            with anyio.fail_after(DEADLINE):
                await device.send(b"Kernel panic")
                await ex.expect(b"Kernel")
                await device.aclose()
                with pytest.raises(ExpectEOFError) as info:
                    await ex.expect(b"login: ")
            assert isinstance(info.value, anyio.EndOfStream)
            assert str(info.value) == (
                "end of stream while waiting for b'login: '; received and unmatched (6): b' panic'"
            )
            assert ex.eof
            assert (await ex.expect(b"panic")).before == b" "
            with pytest.raises(ExpectEOFError):  # and again: it stays ended
                await ex.expect(b"x")

    run(backend, main)


def test_buffer_full_is_the_shared_class(backend: str) -> None:
    async def main() -> None:
        async with pty_pair() as (port, device):
            ex = Expect(port, max_buffer=4)
            await device.send(b"abcdef")
            with anyio.fail_after(DEADLINE), pytest.raises(ExpectBufferFullError):
                await ex.expect(b"x")
            assert ex.buffer == b"abcd"
            assert ex.clear() == b"abcd"
            with anyio.fail_after(DEADLINE):
                assert (await ex.expect(b"f")).before == b"e"

    run(backend, main)


def test_two_tasks_cannot_expect_at_once(backend: str) -> None:
    async def main() -> None:
        async with pty_pair() as (port, _device), anyio.create_task_group() as tg:
            ex = Expect(port)
            tg.start_soon(ex.expect, b"x")
            await wait_until(lambda: port.statistics().tasks_waiting_receive == 1)
            with pytest.raises(anyio.BusyResourceError, match="already waiting in expect"):
                await ex.expect(b"y")
            tg.cancel_scope.cancel()

    run(backend, main)


def test_streams_of_the_wrong_kind_are_refused(backend: str) -> None:
    async def main() -> None:
        async with pty_pair() as (port, device):
            with pytest.raises(TypeError, match=r"must be an anyio\.abc\.ByteReceiveStream"):
                Expect(b"x")  # type: ignore[call-overload]
            with pytest.raises(TypeError, match=r"must be a trio\.abc\.ReceiveStream"):
                trioserial.Expect(port)  # type: ignore[call-overload]
            # A receive-only stream (anyio's buffered reader) expects, but cannot send.
            ex = Expect(BufferedByteReceiveStream(port))
            await device.send(b"ok")
            with anyio.fail_after(DEADLINE):
                await ex.expect(b"ok")
            with pytest.raises(TypeError, match=r"is not an anyio\.abc\.ByteSendStream"):
                await ex.send(b"x")

    run(backend, main)


def test_transcript_on_anyio_clock(backend: str, caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("test.anyio.expect")

    async def main() -> None:
        async with pty_pair() as (port, device):
            ex = Expect(port, transcript=logger)
            with caplog.at_level(logging.DEBUG, logger=logger.name), anyio.fail_after(DEADLINE):
                await ex.send(b"AT\r")
                await device.send(b"OK\r\n")
                await ex.expect(b"OK\r\n")
                await device.aclose()
                with pytest.raises(ExpectEOFError):
                    await ex.expect(b"x")

    run(backend, main)
    lines = [r.getMessage().split(maxsplit=1) for r in caplog.records if r.name == logger.name]
    assert [line[1] for line in lines] == ["send b'AT\\r'", "recv b'OK\\r\\n'", "eof"]
    assert all(float(line[0]) >= 0 for line in lines)


# ---------------------------------------------------------------- cancellation


def test_a_cancelled_expect_reads_and_consumes_nothing(backend: str) -> None:
    async def main() -> None:
        async with pty_pair() as (port, device):
            ex = Expect(port)
            await device.send(b"login: ")
            await wait_until(lambda: pending(port) == 7)
            with anyio.CancelScope() as scope:
                scope.cancel()
                await ex.expect(b"login: ")
            assert scope.cancelled_caught
            assert (ex.buffer, ex.match, pending(port)) == (b"", None, 7)
            with anyio.fail_after(DEADLINE):
                assert (await ex.expect(b"login: ")).before == b""

    run(backend, main)


RECORDS = [b"rec%03d;" % i for i in range(150)]


async def feed_records(device: anyio.abc.ByteSendStream, rng: random.Random) -> None:
    """Send RECORDS in chunks of 1 to 11 bytes, yielding 0 to 3 times between."""
    data = b"".join(RECORDS)
    pos = 0
    while pos < len(data):
        size = rng.randint(1, 11)
        await device.send(data[pos : pos + size])
        pos += size
        for _ in range(rng.randrange(4)):
            await anyio.lowlevel.checkpoint()


@pytest.mark.parametrize("seed", range(4))
def test_cancellation_at_random_points_loses_nothing(backend: str, seed: int) -> None:
    """Records arrive in random chunks while expects are cancelled at random
    points (already cancelled, while waiting, as data wakes them) or time out:
    every record is matched exactly once, in order."""

    async def main() -> None:
        rng = random.Random(seed)
        cancels = timeouts = 0
        seen = b""

        async def cancel_after(scope: anyio.CancelScope, checkpoints: int) -> None:
            for _ in range(checkpoints):
                await anyio.lowlevel.checkpoint()
            scope.cancel()

        async with pty_pair() as (port, device), anyio.create_task_group() as tg:
            ex = Expect(port)
            tg.start_soon(feed_records, device, rng)
            with anyio.fail_after(DEADLINE):  # a lost byte would wait for ever: fail instead
                for _ in RECORDS:
                    while True:
                        with anyio.CancelScope() as scope:
                            if rng.random() < 0.2:
                                scope.cancel()
                            else:
                                tg.start_soon(cancel_after, scope, rng.randrange(6))
                            result = await ex.expect([re.compile(rb"rec(\d+);"), b"never"])
                            break
                        cancels += 1
                        if rng.random() < 0.3:
                            with pytest.raises(ExpectTimeoutError):
                                await ex.expect(b"never", timeout=rng.choice([0, 0.001]))
                            timeouts += 1
                    seen += result.before + result.after
        assert seen == b"".join(RECORDS)
        assert cancels > 20
        assert timeouts > 5

    run(backend, main)


def test_native_asyncio_cancellation_at_random_points_loses_nothing() -> None:
    """asyncio's own cancellation (``task.cancel()``, ``asyncio.timeout``, what
    grpc.aio does to a handler) is not stopped by anyio's shields: an expect
    cancelled that way must still have consumed nothing it did not return."""

    async def main() -> None:
        rng = random.Random(7)
        cancels = 0
        seen = b""

        async with pty_pair() as (port, device), anyio.create_task_group() as tg:
            ex = Expect(port)
            tg.start_soon(feed_records, device, rng)
            with anyio.fail_after(DEADLINE):
                for _ in RECORDS:
                    while True:
                        task = asyncio.ensure_future(ex.expect(re.compile(rb"rec(\d+);")))
                        for _ in range(rng.randrange(5)):
                            await asyncio.sleep(0)  # a yield, noqa: not a wait for data
                        task.cancel()
                        try:
                            result = await task
                        except asyncio.CancelledError:
                            cancels += 1
                            continue
                        break
                    seen += result.before + result.after
        assert seen == b"".join(RECORDS)
        assert cancels > 20

    run("asyncio", main)


def test_closing_the_stream_wakes_expect_and_keeps_the_buffer(backend: str) -> None:
    async def main() -> None:
        async with pty_pair() as (port, device), anyio.create_task_group() as tg:
            ex = Expect(port)
            await device.send(b"partial")
            await wait_until(lambda: pending(port) == 7)  # read at once, then a wait

            async def close_when_waiting() -> None:
                await wait_until(lambda: port.statistics().tasks_waiting_receive == 1)
                await port.aclose()

            tg.start_soon(close_when_waiting)
            with anyio.fail_after(DEADLINE), pytest.raises(anyio.ClosedResourceError):
                await ex.expect(b"never")
            assert ex.buffer == b"partial"
            assert not ex.eof

    run(backend, main)
