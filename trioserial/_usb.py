"""USB identity: what names a USB serial adapter across replugs (layer 1, blocking).

A replug can give an adapter another kernel name (``ttyUSB0`` becomes
``ttyUSB1``). Where udev keeps ``/dev/serial/by-id`` links, the link follows
it; where it does not (containers), the adapter is found again by its vendor,
product and serial number (and interface, for a multi-port adapter), read from
sysfs by :mod:`trioserial._sysfs`, the code behind ``list_ports()``. Each call
here reads sysfs: cheap (about 0.3 ms), but file system work, so event-loop
callers use a worker thread.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import attrs

from ._core import PortCore
from ._errors import PortNotFoundError
from ._portinfo import PortInfo, PortQuery
from ._portwatch import DEFAULT_CONFIG, WatchConfig
from ._sysfs import read_ports

__all__ = ["UsbIdentity", "find_port", "find_usb_port", "open_following", "usb_identity"]

#: Where adapters are read from (tests point it at a recorded sysfs tree).
USB_CONFIG: WatchConfig = DEFAULT_CONFIG


@attrs.frozen
class UsbIdentity:
    """What identifies a USB serial adapter (one port of it) across replugs."""

    vid: int
    pid: int
    serial_number: str
    #: Which port of a multi-port adapter (all share one serial number).
    interface_number: int | None = None

    def query(self) -> PortQuery:
        """The :class:`PortQuery` that finds this adapter's port."""
        number = self.interface_number

        def same_interface(port: PortInfo) -> bool:
            return port.interface_number == number

        return PortQuery(
            vid=self.vid,
            pid=self.pid,
            serial_number=self.serial_number,
            match=same_interface,
        )


def _ports() -> list[PortInfo]:
    return read_ports(sysfs=USB_CONFIG.sysfs, dev=USB_CONFIG.dev)


def usb_identity(path: str) -> UsbIdentity | None:
    """The USB identity of the device at *path*, if it is a USB adapter with a serial number.

    ``None`` for anything else: a URL, a pty, an adapter without a serial
    number (a twin adapter would match it too).
    """
    if "://" in path:
        return None
    target = os.path.realpath(path)
    for info in _ports():
        if os.path.realpath(info.device) == target or path in info.paths:
            if info.vid is None or info.pid is None or not info.serial_number:
                return None
            return UsbIdentity(info.vid, info.pid, info.serial_number, info.interface_number)
    return None


def find_usb_port(identity: UsbIdentity) -> str | None:
    """The device path of the adapter with *identity* now, or ``None``.

    Raises:
      AmbiguousPortError: two ports claim the identity (adapters sharing a
        serial number): neither is taken.
    """
    found = identity.query().choose(
        _ports(), advice="open one by its path: two adapters share this serial number"
    )
    return None if found is None else found.device


def find_port(query: PortQuery) -> str:
    """The device node of the one port *query* matches now.

    Raises:
      PortNotFoundError: no port matches.
      AmbiguousPortError: more than one does (the message names them).
    """
    found = query.choose(_ports(), advice="narrow the query (serial_number=, path=)")
    if found is None:
        raise PortNotFoundError(
            f"no serial port matching {query.describe()} is plugged in", port=query.describe()
        )
    return found.device


def open_following(
    path: str, identity: UsbIdentity | None, open_at: Callable[[str], PortCore]
) -> tuple[PortCore, str, UsbIdentity | None]:
    """Open the device where it is now: ``open_at(path)``, or where the adapter moved.

    When *path* is gone (:exc:`~trioserial.PortNotFoundError`) but the USB
    adapter it was (*identity*) is plugged in under another name, that one is
    opened. Returns the core, the path opened and the adapter's identity
    (looked up after the first open; ``None`` where there is none).
    """
    try:
        core = open_at(path)
    except PortNotFoundError:
        moved = find_usb_port(identity) if identity is not None else None
        if moved is None or moved == path:
            raise
        core, path = open_at(moved), moved
    if identity is None:
        try:
            identity = usb_identity(path)
        except Exception:  # enumeration trouble must not lose an open port
            identity = None
    return core, path, identity
