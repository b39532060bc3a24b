"""``UBoot.load``: an image into U-Boot's memory over its console, checked by CRC-32 (layer 3).

U-Boot's ``loady``/``loadx`` receive with YMODEM/XMODEM on the console itself;
the transfer is :mod:`trioserial.transfer`'s, on the same stream, and what
arrived is checked with U-Boot's own ``crc32`` against the host's.
"""

from __future__ import annotations

import io
import os
import re
import zlib
from collections.abc import Callable
from typing import Final, final

import trio

from ._sessioncore import Engine, FailurePatterns, State, check_timeout
from ._shellproto import lines_before_marker, long_line_before_marker
from ._transfer_base import TransferError, TransferProgress
from .transfer import xmodem_send, ymodem_send

__all__ = ["PROTOCOLS", "load"]

#: ``protocol=`` values and the U-Boot command that receives each.
PROTOCOLS: Final = {"ymodem": "loady", "xmodem": "loadx"}

_READY_TEXT: Final = "## Ready for binary"
_READY: Final = re.compile(re.escape(_READY_TEXT) + r" \((?:ymodem|xmodem)\) download[^\n]*\n")
# Longer than U-Boot's quiet-line wait after a transfer, with room for a slow host.
_SETTLE_SECONDS: Final = 5.0
_CRC: Final = re.compile(r"==> ([0-9a-f]{8})\s*$")


@final
class _Replaying(trio.abc.Stream):
    """*stream*, with *prefix* received first.

    The session's ``Expect`` may already hold what U-Boot sent right after its
    "Ready" line (the receiver's first ``C`` or NAK): handing it to the
    transfer keeps that start character instead of waiting for the next one.
    """

    def __init__(self, stream: trio.abc.Stream, prefix: bytes) -> None:
        self._stream = stream
        self._prefix = prefix

    async def receive_some(self, max_bytes: int | None = None) -> bytes | bytearray:
        if self._prefix:
            await trio.lowlevel.checkpoint()
            size = len(self._prefix) if max_bytes is None else max_bytes
            data, self._prefix = self._prefix[:size], self._prefix[size:]
            return data
        return await self._stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self._stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self._stream.wait_send_all_might_not_block()

    async def aclose(self) -> None:  # pragma: no cover - the session never closes it
        await self._stream.aclose()


async def read_image(data: object) -> bytes:
    """*data* (bytes-like, a binary file object, or a path) as bytes; files read in a thread."""
    if isinstance(data, bytes | bytearray | memoryview):
        return bytes(data)
    if isinstance(data, str | os.PathLike):
        path = os.fspath(data)
        try:
            return await trio.to_thread.run_sync(_read_path, path)
        except OSError as exc:
            raise TransferError(f"cannot read {path!r}: {exc.strerror or exc}") from exc
    read = getattr(data, "read", None)
    if callable(read):
        content = await trio.to_thread.run_sync(read)
        if isinstance(content, bytes | bytearray):
            return bytes(content)
    raise TypeError(
        f"data must be bytes-like, a binary file object or a path, got {type(data).__name__}"
    )


def _read_path(path: str) -> bytes:
    with open(path, "rb") as file:
        return file.read()


def check_address(address: object) -> int:
    if isinstance(address, bool) or not isinstance(address, int) or address < 0:
        raise ValueError(f"address must be an int >= 0, got {address!r}")
    return address


async def load(
    engine: Engine,
    data: object,
    address: object,
    *,
    protocol: str,
    progress: Callable[[TransferProgress], object] | None,
    timeout: float | None,  # noqa: ASYNC109
    fail_on: FailurePatterns | None,
) -> int:
    """What :meth:`trioserial.UBoot.load` does; see there."""
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {sorted(PROTOCOLS)}, got {protocol!r}")
    start = check_address(address)
    seconds = check_timeout("timeout", timeout)
    fail = engine.failures(fail_on)
    image = await read_image(data)
    if engine.state in (State.NEW, State.FAILED):
        raise RuntimeError(
            "the U-Boot session is not ready: call interrupt_autoboot() first "
            "(again after a device failure)"
        )
    with engine.busy:
        try:
            with trio.move_on_after(seconds):
                return await _load(engine, image, start, protocol, progress, fail)
        except BaseException:
            # A cancelled transfer has told U-Boot (CAN CAN); Ctrl-C and the
            # prompt bring the console back, as after a cancelled run().
            await engine.interrupt(fail)
            raise
        await engine.interrupt(fail)
        raise trio.TooSlowError(
            f"loading {len(image)} bytes at {start:#x} with {protocol} did not finish "
            f"within {timeout} s; it was cancelled"
        )


async def _load(
    engine: Engine,
    image: bytes,
    address: int,
    protocol: str,
    progress: Callable[[TransferProgress], object] | None,
    fail: tuple[re.Pattern[str], ...],
) -> int:
    if engine.state is State.UNSYNCED:
        await engine.resync(fail)
    engine.state = State.UNSYNCED  # until the prompt is back after the transfer
    await engine.send_line(f"{PROTOCOLS[protocol]} {address:#x}")
    found = await engine.until(
        [_READY, engine.prompt],
        lines_before_marker(_READY_TEXT),
        fail,
        long_line=long_line_before_marker(_READY_TEXT),
    )
    if found.index != 0:
        engine.state = State.READY
        raise TransferError(
            f"U-Boot did not start {PROTOCOLS[protocol]}; it printed:\n{engine.tail()}"
        )
    # What U-Boot sent after the line (its first start character) goes to the transfer.
    prefix = engine.expect.clear().encode(engine.expect.encoding or "utf-8", "replace")
    stream = _Replaying(engine.stream, prefix)
    engine.transcript.sent(f"({protocol} transfer of {len(image)} bytes)", engine.now())
    if protocol == "ymodem":
        await ymodem_send(stream, [("image.bin", io.BytesIO(image))], progress=progress)
    else:
        await xmodem_send(stream, image, block_size=1024, progress=progress)
    # After the last ACK U-Boot drains the line until it falls quiet
    # (xyzModem_flush) and drops what it reads, so a line typed now can lose
    # its first characters: type nothing until its prompt is back. The
    # transfer may have read part of U-Boot's summary, prompt included, so the
    # wait is bounded; a fresh marker (retried after Ctrl-C if it was mangled)
    # then puts the session back in step.
    with trio.move_on_after(_SETTLE_SECONDS):
        await engine.wait_prompt(fail)
    with trio.move_on_after(_SETTLE_SECONDS) as settle:
        await engine.sync(fail)
    if settle.cancelled_caught:
        await engine.resync(fail)
    result = await engine.exchange(f"crc32 {address:#x} {len(image):#x}", fail)
    match = _CRC.search(result.output.strip())
    if result.exit_code != 0 or match is None:
        raise TransferError(
            f"U-Boot's crc32 failed (exit status {result.exit_code}): {result.output!r}"
        )
    device, host = int(match.group(1), 16), zlib.crc32(image)
    if device != host:
        raise TransferError(
            f"{len(image)} bytes loaded at {address:#x} with {protocol}, but U-Boot's "
            f"crc32 is {device:08x} and the host's is {host:08x}"
        )
    return len(image)
