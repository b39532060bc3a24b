"""Finding ports on Trio: ``list_ports``, ``wait_for_port``, ``watch_ports`` (layer 2).

The logic is ``_portwatch``'s, shared with the anyio front end; this module
only fills its table of loop primitives from Trio. See ``docs/ports.rst``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Final

import trio

from . import _portwatch
from ._portinfo import PortInfo, PortQuery
from ._portwatch import DEFAULT_CONFIG, PortEvents, Primitives, WatchConfig

__all__ = ["list_ports", "wait_for_port", "watch_ports"]

TRIO: Final = Primitives(
    wait_readable=trio.lowlevel.wait_readable,
    notify_closing=trio.lowlevel.notify_closing,
    checkpoint=trio.lowlevel.checkpoint,
    sleep=trio.sleep,
    move_on_after=trio.move_on_after,
    shield=lambda: trio.CancelScope(shield=True),
    run_sync=trio.to_thread.run_sync,
)


async def list_ports(*, _config: WatchConfig = DEFAULT_CONFIG) -> list[PortInfo]:
    """The serial ports of this machine, in device-name order (``ttyUSB2`` before ``ttyUSB10``).

    Hardware ttys as sysfs lists them (USB adapters, CDC-ACM devices,
    mainboard UARTs that have a UART behind them), with their USB identity and
    ``/dev/serial`` links. Ptys are not listed: they are no hardware (name one
    with ``wait_for_port(path=...)``). No port is opened.

    Returns:
      A new list of :class:`~trioserial.PortInfo`.

    Cancellation:
      The sysfs reads run in a worker thread and are not interrupted; a
      cancellation takes effect when they finish, and nothing is left behind.
    """
    return await _portwatch.list_ports(TRIO, _config)


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
    """The port that matches, as soon as it is there: at once if it already is.

    Every criterion given must hold; with none, any port will do. Waiting is
    driven by the kernel's device events (see :doc:`/ports`), so the call
    returns within a millisecond or so of the device appearing and uses no
    CPU while it waits.

    Args:
      vid: USB vendor id, such as ``0x0403``.
      pid: USB product id.
      serial_number: USB serial number string (what tells twin adapters apart).
      path: a name of the port: its device node, its ``/dev/serial`` link, or
        any symlink to it (a pty behind a symlink counts: ptys are found by
        path only). Waits until the path exists and is a tty.
      match: a predicate on :class:`~trioserial.PortInfo` for anything else
        (``lambda p: p.interface_number == 1``).
      first: when several ports match, return the first in device-name order
        instead of raising :exc:`~trioserial.AmbiguousPortError`.
      timeout: seconds to wait; ``None`` (the default) waits until cancelled.

    Returns:
      The :class:`~trioserial.PortInfo` of the port; open ``port.device``.

    Raises:
      AmbiguousPortError: more than one port matches and *first* is false;
        the message names them all.
      PortNotFoundError: nothing matched within *timeout* seconds.
      NotASerialPortError: *path* exists but is not a tty.
      TypeError, ValueError: a criterion of the wrong type or range.

    Cancellation:
      Always a checkpoint. A cancelled call has closed the netlink and inotify
      fds it opened and leaves no task behind.
    """
    query = PortQuery(vid=vid, pid=pid, serial_number=serial_number, path=path, match=match)
    return await _portwatch.wait_for_port(TRIO, query, first=first, timeout=timeout, config=_config)


def watch_ports(
    *, _config: WatchConfig = DEFAULT_CONFIG
) -> AbstractAsyncContextManager[PortEvents]:
    """Ports being added and removed, as they happen::

        async with trioserial.watch_ports() as events:
            print(events.ports)  # what is there now
            async for event in events:
                print(event.kind, event.port.device)

    Yields:
      :class:`~trioserial.PortEvents`, an async iterator of
      :class:`~trioserial.PortEvent`; iteration ends with the block.

    Cancellation:
      A cancelled iteration has consumed no event: the next one reports every
      change since. Leaving the block closes every fd the watch opened.
    """
    return _portwatch.watch_ports(TRIO, _config)
