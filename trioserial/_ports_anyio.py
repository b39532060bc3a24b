"""Finding ports on anyio: the same three calls as ``_ports``, on anyio's primitives (layer 2).

This module never imports :mod:`trio`; the logic is ``_portwatch``'s.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Final

import anyio
import anyio.lowlevel
import anyio.to_thread

from . import _portwatch
from ._portinfo import PortInfo, PortQuery
from ._portwatch import DEFAULT_CONFIG, PortEvents, Primitives, WatchConfig

__all__ = ["list_ports", "wait_for_port", "watch_ports"]

ANYIO: Final = Primitives(
    wait_readable=anyio.wait_readable,
    notify_closing=anyio.notify_closing,
    checkpoint=anyio.lowlevel.checkpoint,
    sleep=anyio.sleep,
    move_on_after=anyio.move_on_after,
    shield=lambda: anyio.CancelScope(shield=True),
    run_sync=anyio.to_thread.run_sync,
)


async def list_ports(*, _config: WatchConfig = DEFAULT_CONFIG) -> list[PortInfo]:
    """:func:`trioserial.list_ports` on anyio (asyncio or trio backend)."""
    return await _portwatch.list_ports(ANYIO, _config)


async def wait_for_port(
    *,
    vid: int | None = None,
    pid: int | None = None,
    serial_number: str | None = None,
    path: str | None = None,
    match: Callable[[PortInfo], bool] | None = None,
    first: bool = False,
    timeout: float | None = None,  # noqa: ASYNC109 - the issue asks for it; None: no limit
    _config: WatchConfig = DEFAULT_CONFIG,
) -> PortInfo:
    """:func:`trioserial.wait_for_port` on anyio: same arguments, errors and guarantees."""
    query = PortQuery(vid=vid, pid=pid, serial_number=serial_number, path=path, match=match)
    return await _portwatch.wait_for_port(
        ANYIO, query, first=first, timeout=timeout, config=_config
    )


def watch_ports(
    *, _config: WatchConfig = DEFAULT_CONFIG
) -> AbstractAsyncContextManager[PortEvents]:
    """:func:`trioserial.watch_ports` on anyio: ``async with`` it, ``async for`` its events."""
    return _portwatch.watch_ports(ANYIO, _config)
