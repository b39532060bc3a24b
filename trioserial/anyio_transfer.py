"""File transfer for anyio byte streams: :mod:`trioserial.transfer`'s six functions.

The same driver and protocol machines, over any :class:`anyio.abc.ByteStream`
(a :class:`trioserial.anyio.AnyioSerialStream`, a memory object stream pair
wrapped as one) on either of anyio's backends. Arguments, results, errors and
what a cancellation leaves behind are exactly those of the Trio functions;
only the stream type differs. This module never imports :mod:`trio`.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING

import anyio
import anyio.abc
import anyio.to_thread

from . import _transfer, _transfer_zmodem
from ._anyio_loop import ANYIO_PRIMITIVES
from ._transfer import Data
from ._transfer_base import TransferCancelledError as TransferCancelledError
from ._transfer_base import TransferError as TransferError
from ._transfer_base import TransferFileError as TransferFileError
from ._transfer_base import TransferProgress as TransferProgress
from ._transfer_base import TransferRetriesError as TransferRetriesError
from ._transfer_base import TransferTimeoutError as TransferTimeoutError
from ._transfer_base import UnsafeFileNameError as UnsafeFileNameError
from ._transfer_primitives import Primitives, stream_primitives

if TYPE_CHECKING:  # (the docs show "Path"; pathlib has no inventory offline)
    from pathlib import Path

__all__ = [
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

DEFAULT_TIMEOUT = 10.0


def _primitives(stream: anyio.abc.ByteStream) -> Primitives:
    if not isinstance(stream, (anyio.abc.ByteSendStream)) or not isinstance(
        stream, anyio.abc.ByteReceiveStream
    ):
        raise TypeError(f"stream must be an anyio.abc.ByteStream, got {type(stream).__name__}")

    async def receive_some(max_bytes: int) -> bytes:
        try:
            return await stream.receive(max_bytes)
        except anyio.EndOfStream:
            return b""

    return stream_primitives(
        ANYIO_PRIMITIVES,
        send=stream.send,
        receive_some=receive_some,
        to_thread=anyio.to_thread.run_sync,
        drained=getattr(stream, "wait_drained", None),
    )


async def xmodem_send(
    stream: anyio.abc.ByteStream,
    data: bytes | bytearray | memoryview | IO[bytes] | str | os.PathLike[str],
    *,
    block_size: int = 1024,
    progress: Callable[[TransferProgress], object] | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (a per-wait limit, not a deadline)
) -> int:
    """:func:`trioserial.transfer.xmodem_send` for an anyio byte stream."""
    return await _transfer.xmodem_send(
        _primitives(stream), data, block_size=block_size, progress=progress, timeout=timeout
    )


async def xmodem_receive(
    stream: anyio.abc.ByteStream,
    sink: IO[bytes] | str | os.PathLike[str],
    *,
    crc: bool = True,
    size: int | None = None,
    progress: Callable[[TransferProgress], object] | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (a per-wait limit, not a deadline)
) -> int:
    """:func:`trioserial.transfer.xmodem_receive` for an anyio byte stream."""
    return await _transfer.xmodem_receive(
        _primitives(stream), sink, crc=crc, size=size, progress=progress, timeout=timeout
    )


async def ymodem_send(
    stream: anyio.abc.ByteStream,
    files: Iterable[str | os.PathLike[str] | tuple[str, Data]],
    *,
    progress: Callable[[TransferProgress], object] | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (a per-wait limit, not a deadline)
) -> None:
    """:func:`trioserial.transfer.ymodem_send` for an anyio byte stream."""
    await _transfer.ymodem_send(_primitives(stream), files, progress=progress, timeout=timeout)


async def ymodem_receive(
    stream: anyio.abc.ByteStream,
    directory: str | os.PathLike[str],
    *,
    progress: Callable[[TransferProgress], object] | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (a per-wait limit, not a deadline)
) -> list[Path]:
    """:func:`trioserial.transfer.ymodem_receive` for an anyio byte stream."""
    return await _transfer.ymodem_receive(
        _primitives(stream), directory, progress=progress, timeout=timeout
    )


async def zmodem_send(
    stream: anyio.abc.ByteStream,
    files: Iterable[str | os.PathLike[str] | tuple[str, Data]],
    *,
    progress: Callable[[TransferProgress], object] | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (a per-wait limit, not a deadline)
    resume: bool = False,
) -> None:
    """:func:`trioserial.transfer.zmodem_send` for an anyio byte stream."""
    await _transfer_zmodem.zmodem_send(
        _primitives(stream), files, progress=progress, timeout=timeout, resume=resume
    )


async def zmodem_receive(
    stream: anyio.abc.ByteStream,
    directory: str | os.PathLike[str],
    *,
    progress: Callable[[TransferProgress], object] | None = None,
    timeout: float = DEFAULT_TIMEOUT,  # noqa: ASYNC109 (a per-wait limit, not a deadline)
    resume: bool = False,
) -> list[Path]:
    """:func:`trioserial.transfer.zmodem_receive` for an anyio byte stream."""
    return await _transfer_zmodem.zmodem_receive(
        _primitives(stream), directory, progress=progress, timeout=timeout, resume=resume
    )
