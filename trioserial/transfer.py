"""File transfer over a serial line for Trio: XMODEM, XMODEM-1K, YMODEM and ZMODEM, both ways.

The functions take any :class:`trio.abc.Stream` (an :class:`~trioserial.AsyncSerial`,
a :class:`~trioserial.DriverStream`, a :mod:`trio.testing` memory stream pair);
:mod:`trioserial.anyio_transfer` has the same six for anyio byte streams. The
protocol rules, what a cancellation leaves behind and a U-Boot example are in
the "File transfer" page of the documentation.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING, Final

import trio

from . import _transfer, _transfer_zmodem
from ._transfer import Data
from ._transfer_base import TransferCancelledError as TransferCancelledError
from ._transfer_base import TransferError as TransferError
from ._transfer_base import TransferFileError as TransferFileError
from ._transfer_base import TransferProgress as TransferProgress
from ._transfer_base import TransferRetriesError as TransferRetriesError
from ._transfer_base import TransferTimeoutError as TransferTimeoutError
from ._transfer_base import UnsafeFileNameError as UnsafeFileNameError
from ._transfer_primitives import Primitives, stream_primitives
from ._trio_loop import TRIO_PRIMITIVES

if TYPE_CHECKING:  # (the docs show "Path"; pathlib has no inventory offline)
    from pathlib import Path

__all__ = [
    "DEFAULT_TIMEOUT",
    "TransferCancelledError",
    "TransferError",
    "TransferFileError",
    "TransferProgress",
    "TransferRetriesError",
    "TransferTimeoutError",
    "UnsafeFileNameError",
    "xmodem_receive",
    "xmodem_send",
    "ymodem_receive",
    "ymodem_send",
    "zmodem_receive",
    "zmodem_send",
]

#: Seconds the peer may stay silent (at the start, or between blocks) before a transfer fails.
DEFAULT_TIMEOUT: Final = 10.0


def _primitives(stream: trio.abc.Stream) -> Primitives:
    if not isinstance(stream, trio.abc.SendStream) or not isinstance(
        stream, trio.abc.ReceiveStream
    ):
        raise TypeError(f"stream must be a trio.abc.Stream, got {type(stream).__name__}")

    async def receive_some(max_bytes: int) -> bytes:
        return bytes(await stream.receive_some(max_bytes))

    return stream_primitives(
        TRIO_PRIMITIVES,
        send=stream.send_all,
        receive_some=receive_some,
        to_thread=trio.to_thread.run_sync,
        drained=getattr(stream, "wait_drained", None),
    )


async def xmodem_send(
    stream: trio.abc.Stream,
    data: bytes | bytearray | memoryview | IO[bytes] | str | os.PathLike[str],
    *,
    block_size: int = 1024,
    progress: Callable[[TransferProgress], object] | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (a per-wait limit, not a deadline)
) -> int:
    """Send one file with XMODEM (``block_size=128``) or XMODEM-1K (1024).

    Waits for the receiver's start character: ``C`` selects CRC-16, NAK the
    8-bit checksum. A ``C`` followed by more text in the same read (a
    banner) is not taken as a start. The last block is padded with 0x1A
    (XMODEM has no length; a last piece of 128 bytes or less goes in a
    128-byte block).

    Args:
      stream: the serial port (any :class:`trio.abc.Stream`).
      data: bytes-like, a binary file object (read from its position), or a path.
      block_size: 128 (classic XMODEM) or 1024 (XMODEM-1K).
      progress: called with a :class:`TransferProgress` after each
        acknowledged block and once at the end with ``done == total``.
      timeout: seconds the receiver may say nothing useful (before it
        starts, or after a block) before the transfer fails.

    Returns:
      The number of payload bytes the receiver acknowledged (the file's size).

    Raises:
      TransferTimeoutError: the receiver did not start or answer in time.
      TransferRetriesError: the receiver rejected one block ten times.
      TransferCancelledError: the receiver sent CAN CAN.
      TransferFileError: *data* could not be read.
      TransferError: the port hung up.
      TypeError, ValueError: a bad argument (nothing was sent).

    Cancellation:
      The receiver is told (8 CAN and 8 backspaces, sent under a shield for
      at most a second; a block cut off mid-send is first completed with
      CANs). The blocks reported through *progress* are the ones acknowledged.
      Bytes the receiver sends afterwards (its own messages, a prompt) are
      left in the stream for the next reader.
    """
    return await _transfer.xmodem_send(
        _primitives(stream), data, block_size=block_size, progress=progress, timeout=timeout
    )


async def xmodem_receive(
    stream: trio.abc.Stream,
    sink: IO[bytes] | str | os.PathLike[str],
    *,
    crc: bool = True,
    size: int | None = None,
    progress: Callable[[TransferProgress], object] | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (a per-wait limit, not a deadline)
) -> int:
    """Receive one file with XMODEM (128- and 1024-byte blocks, mixed as the sender likes).

    XMODEM cannot tell padding from data: the last block arrives filled up
    with 0x1A (or whatever the sender pads with) and, without *size*, is
    written whole. Give *size* when you know the file's real length.

    Args:
      stream: the serial port (any :class:`trio.abc.Stream`).
      sink: a binary file object (written from its position, not closed) or
        a path (created or truncated before the transfer starts).
      crc: ask for CRC-16 (``C``, falling back to the checksum after three
        unanswered tries); ``False`` asks for the checksum (NAK) at once.
      size: the file's real size: data beyond it is not written.
      progress: called after each block and once at the end with
        ``done == total`` (``total`` is *size*, ``None`` until the end without it).
      timeout: seconds the sender may say nothing useful before the transfer fails.

    Returns:
      The number of bytes written to *sink*.

    Raises:
      TransferTimeoutError, TransferRetriesError, TransferCancelledError,
      TransferFileError, TransferError: as for :func:`xmodem_send`.

    Cancellation:
      The sender is told (8 CAN and backspaces, shielded). *sink* holds
      exactly the data of every block acknowledged, in order, and nothing
      else; a path is left in place with that data.
    """
    return await _transfer.xmodem_receive(
        _primitives(stream), sink, crc=crc, size=size, progress=progress, timeout=timeout
    )


async def ymodem_send(
    stream: trio.abc.Stream,
    files: Iterable[str | os.PathLike[str] | tuple[str, Data]],
    *,
    progress: Callable[[TransferProgress], object] | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (a per-wait limit, not a deadline)
) -> None:
    """Send files with YMODEM batch: a header block (name, size, mtime, mode) before each.

    The batch ends with the empty header. YMODEM-g (no acknowledgements) is
    not offered: it has no error recovery at all, and a serial line without
    flow control loses bytes.

    Args:
      stream: the serial port (any :class:`trio.abc.Stream`).
      files: paths (sent under their base name, with their mtime and mode),
        or ``(name, data)`` pairs where *data* is bytes-like, a binary file
        object (its size is sent when it can be known without reading it),
        or a path sent under *name* (a ``str`` is a path: send text as
        ``text.encode()``).
      progress: called after each acknowledged block, and at the end of each
        file with ``done == total``.
      timeout: seconds the receiver may say nothing useful before the transfer fails.

    Raises:
      TransferTimeoutError, TransferRetriesError, TransferCancelledError,
      TransferFileError, TransferError: as for :func:`xmodem_send`.

    Cancellation:
      As for :func:`xmodem_send`. Files whose final progress report came
      before the cancellation are complete at the receiver.
    """
    await _transfer.ymodem_send(_primitives(stream), files, progress=progress, timeout=timeout)


async def ymodem_receive(
    stream: trio.abc.Stream,
    directory: str | os.PathLike[str],
    *,
    progress: Callable[[TransferProgress], object] | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (a per-wait limit, not a deadline)
) -> list[Path]:
    """Receive a YMODEM batch into *directory*; return the paths of the files written.

    Each file is cut to the size in its header (no padding left) and gets
    its mtime; it is written as ``NAME.part`` and renamed to ``NAME`` once
    complete (replacing a file of that name). Names from the wire are
    untrusted: a directory part is dropped (``sub/x`` writes ``x``), and an
    empty name, a NUL, an absolute path or a ``..`` component cancels the
    transfer with :exc:`UnsafeFileNameError`.

    Args:
      stream: the serial port (any :class:`trio.abc.Stream`).
      directory: an existing directory.
      progress: called after each block and at the end of each file with
        ``done == total``.
      timeout: seconds the sender may say nothing useful before the transfer fails.

    Returns:
      The files completed, in the order they arrived.

    Raises:
      UnsafeFileNameError: a header named a file outside *directory*.
      TransferTimeoutError, TransferRetriesError, TransferCancelledError,
      TransferFileError, TransferError: as for :func:`xmodem_send`.
      TransferError: also when the sender ends a file short of its header's size.

    Cancellation:
      The sender is told (8 CAN and backspaces, shielded). Files completed
      before stay; the file being received stays as ``NAME.part`` holding
      exactly the data of the blocks acknowledged.
    """
    return await _transfer.ymodem_receive(
        _primitives(stream), directory, progress=progress, timeout=timeout
    )


async def zmodem_send(
    stream: trio.abc.Stream,
    files: Iterable[str | os.PathLike[str] | tuple[str, Data]],
    *,
    progress: Callable[[TransferProgress], object] | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (a per-wait limit, not a deadline)
    resume: bool = False,
) -> None:
    """Send files with ZMODEM (to ``rz`` on a device, say), streaming at line speed.

    Waits for the receiver's ZRINIT (start ``rz`` on the other side first;
    nothing is typed for you), offers each file with its name, size, mtime
    and mode, and streams it; corrupted or lost data is resent from the
    position the receiver asks for (ZRPOS), never from the start of the file.
    See :doc:`zmodem` for the protocol's choices.

    Args:
      stream: the serial port (any :class:`trio.abc.Stream`).
      files: paths (sent under their base name, with their mtime and mode),
        or ``(name, data)`` pairs where *data* is bytes-like, a binary file
        object or a path sent under *name* (a ``str`` is a path). A file
        object is read from its position, and must be seekable for the
        receiver to ask for data again.
      progress: called with a :class:`TransferProgress` whenever the
        receiver acknowledges data (every 32 KiB), and at the end of each
        file with ``done == total``.
      timeout: seconds the receiver may say nothing useful before the transfer fails.
      resume: ask the receiver to continue files it holds part of (ZCRESUM).
        Whatever this says, the sender starts each file where the receiver
        asks: a receiver resuming on its own (``rz -r``) is always followed.

    Raises:
      TransferTimeoutError: the receiver did not start or answer in time.
      TransferRetriesError: the receiver asked for the same position 20 times
        (``block`` is that byte position), or never answered a header.
      TransferCancelledError: the receiver aborted (five CAN).
      TransferFileError: a file could not be read (or re-read from a position).
      TransferError: the receiver refused a file or the port hung up.
      TypeError, ValueError: a bad argument (nothing was sent).

    Cancellation:
      The receiver is told (8 CAN and 8 backspaces, sent under a shield for
      at most a second; ``rz`` then removes or keeps its partial file as it
      is configured to). Files whose final progress report came before the
      cancellation are complete at the receiver; the current file holds at
      least the ``done`` of the last report.
    """
    await _transfer_zmodem.zmodem_send(
        _primitives(stream), files, progress=progress, timeout=timeout, resume=resume
    )


async def zmodem_receive(
    stream: trio.abc.Stream,
    directory: str | os.PathLike[str],
    *,
    progress: Callable[[TransferProgress], object] | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (a per-wait limit, not a deadline)
    resume: bool = False,
) -> list[Path]:
    """Receive a ZMODEM session (from ``sz`` on a device, say) into *directory*.

    Sends ZRINIT until the sender offers files. Each file is written as
    ``NAME.part`` and renamed to ``NAME`` once complete (replacing a file of
    that name), with its mtime. Names from the wire are untrusted exactly as
    in :func:`ymodem_receive`. Remote commands (ZCOMMAND) are refused.

    Args:
      stream: the serial port (any :class:`trio.abc.Stream`).
      directory: an existing directory.
      progress: called each time data is written, and at the end of each
        file with ``done == total``.
      timeout: seconds the sender may say nothing useful before the transfer fails.
      resume: continue a file from the ``NAME.part`` an interrupted transfer
        left (the sender is asked for the rest), and skip a file whose
        ``NAME`` already has the offered size. A sender's ZCRESUM (``sz -r``)
        asks for the same, file by file.

    Returns:
      The files completed by this call, in the order they arrived (files
      skipped as already complete are not in it; their progress reports
      ``done == total``).

    Raises:
      UnsafeFileNameError: a ZFILE named a file outside *directory*.
      TransferTimeoutError, TransferRetriesError, TransferCancelledError,
      TransferFileError, TransferError: as for :func:`zmodem_send`.

    Cancellation:
      The sender is told (8 CAN and backspaces, shielded). Files completed
      before stay; the file being received stays as ``NAME.part`` holding
      exactly the data that arrived checked, in order: a later call with
      ``resume=True`` continues it.
    """
    return await _transfer_zmodem.zmodem_receive(
        _primitives(stream), directory, progress=progress, timeout=timeout, resume=resume
    )
