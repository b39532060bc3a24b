"""ZMODEM from ``trioserial console`` (layer 3): the transfer a device-side ``sz``/``rz`` asks for.

The console finds the start with :class:`~._zmodem_detect.ZmodemDetector`
(sans-IO) and calls :func:`run_transfer`. The transfer reads the port
through :class:`ReplayStream`, which first gives back the header bytes the
console already read, so nothing is lost and nothing is read twice.
"""

from __future__ import annotations

import io
import math
import pathlib
from collections.abc import Awaitable, Callable, Sequence

import attrs
import trio

from . import transfer
from ._transfer_base import CANCEL_SEQUENCE
from ._zmodem_detect import Direction, ZmodemStart

__all__ = ["ReplayStream", "ScreenWriter", "ZmodemOptions", "run_transfer"]


class ReplayStream(trio.abc.Stream):
    """*stream*, with *prefix* given back first by :meth:`receive_some`.

    For handing a transfer the header bytes the console has already read.
    Closing it does not close *stream* (the console goes on with it).
    """

    def __init__(self, stream: trio.abc.Stream, prefix: bytes) -> None:
        self._stream = stream
        self._prefix = prefix

    @property
    def unread(self) -> bytes:
        """What of the prefix the transfer did not read (the console shows it)."""
        return self._prefix

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._prefix:
            await trio.lowlevel.checkpoint()
            size = len(self._prefix) if max_bytes is None else max_bytes
            data, self._prefix = self._prefix[:size], self._prefix[size:]
            return data
        return bytes(await self._stream.receive_some(max_bytes))

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def wait_drained(self) -> None:
        """The port's :meth:`~trioserial.AsyncSerial.wait_drained`, where it has one."""
        drained = getattr(self._stream, "wait_drained", None)
        if drained is not None:
            await drained()
        else:
            await trio.lowlevel.checkpoint()

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


@attrs.frozen(kw_only=True)
class ZmodemOptions:
    """What the console does when the device starts ZMODEM.

    Attributes:
      directory: where a device-side ``sz`` writes (names from the wire are
        checked: never outside it).
      send: the files a device-side ``rz`` gets; none: its ``rz`` is cancelled.
    """

    directory: pathlib.Path = attrs.field(factory=pathlib.Path)
    send: Sequence[pathlib.Path] = ()


class ScreenWriter(io.StringIO):
    """A text file for :class:`~._cli_transfer.Progress` that queues its text for the screen.

    The progress callback is synchronous and the screen is a Trio stream, so
    writes go into a channel that a task drains. LF becomes CR LF: the
    terminal is raw (no output processing). The progress display redraws at
    most ten times a second, so the queue stays short.
    """

    def __init__(self, channel: trio.MemorySendChannel[bytes]) -> None:
        super().__init__()
        self._channel = channel

    def isatty(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._channel.send_nowait(text.replace("\n", "\r\n").encode())
        return len(text)


async def run_transfer(
    port: trio.abc.Stream,
    start: ZmodemStart,
    options: ZmodemOptions,
    *,
    say: Callable[[str], Awaitable[None]],
    show: Callable[[bytes], Awaitable[None]],
    scope: trio.CancelScope,
) -> bytes:
    """Run the transfer *start* asks for on *port*, with a progress line; return unread bytes.

    *scope* is the keyboard's way to stop it (the console cancels it on
    Ctrl-C or the exit key): a cancelled transfer tells the peer, as
    :mod:`trioserial.transfer` documents, and this returns normally. A
    failed transfer is reported with *say*, not raised: the
    console goes on. Returns what of ``start.data`` the transfer did not
    read (for the screen).
    """
    # Imported here: _cli_transfer imports _cli, which imports the console.
    from ._cli_transfer import Progress

    replay = ReplayStream(port, start.data)
    lines_in, lines_out = trio.open_memory_channel[bytes](math.inf)
    progress = Progress(ScreenWriter(lines_in), tty=True)

    async def draw() -> None:
        async for text in lines_out:
            await show(text)

    if start.direction is Direction.RECEIVE:
        await say(
            f"zmodem: the device is sending; receiving into {options.directory}/ (Ctrl-C cancels)"
        )
    elif options.send:
        await say(
            f"zmodem: the device is receiving; sending {_names(options.send)} (Ctrl-C cancels)"
        )
    message = ""
    async with trio.open_nursery() as nursery:
        nursery.start_soon(draw)
        with lines_in:
            try:
                with scope:
                    message = await _transfer(replay, start.direction, options, progress)
            except (transfer.TransferError, trio.BrokenResourceError) as exc:
                message = f"zmodem: {start.direction.value} failed: {exc}"
            if scope.cancelled_caught:
                message = f"zmodem: {start.direction.value} cancelled (the device was told)"
    await say(message)
    if len(replay.unread) == len(start.data):
        # Answered without reading (no file to send, no directory): the
        # header must not go back to the detector, or it would start again.
        return b""
    return replay.unread


async def _transfer(
    stream: ReplayStream,
    direction: Direction,
    options: ZmodemOptions,
    progress: Callable[[transfer.TransferProgress], None],
) -> str:
    if direction is Direction.RECEIVE:
        paths = await transfer.zmodem_receive(stream, options.directory, progress=progress)
        return f"zmodem: received {_names(paths) or 'no file'} into {options.directory}/"
    if not options.send:
        await stream.send_all(CANCEL_SEQUENCE)
        return "zmodem: the device started rz but no file was given (--send FILE): cancelled it"
    await transfer.zmodem_send(stream, options.send, progress=progress)
    return f"zmodem: sent {_names(options.send)}"


def _names(paths: Sequence[pathlib.Path]) -> str:
    return ", ".join(path.name for path in paths)
