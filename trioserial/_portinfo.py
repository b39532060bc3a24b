"""What a serial port is, which ports a caller wants, and what changed (layer 0, sans-IO).

:class:`PortInfo` describes one port as sysfs and udev name it;
:class:`PortQuery` says which ports a caller waits for; :func:`diff_ports`
turns two snapshots into :class:`PortEvent` values. Nothing here touches the
file system or an event loop: ``_sysfs`` reads the ports, ``_portwatch``
waits for changes, and these functions decide what the readings mean.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from typing import Literal

import attrs

from ._errors import SerialPortError

__all__ = [
    "AmbiguousPortError",
    "PortEvent",
    "PortInfo",
    "PortQuery",
    "diff_ports",
    "port_sort_key",
]


def _check_usb_id(name: str) -> Callable[[object, attrs.Attribute[int | None], int | None], None]:
    def check(_: object, __: attrs.Attribute[int | None], value: int | None) -> None:
        if value is None:
            return
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 0xFFFF:
            raise ValueError(f"{name} must be a USB id from 0 to 0xffff or None, got {value!r}")

    return check


@attrs.frozen(kw_only=True)
class PortInfo:
    """One serial port of this machine, as the kernel and udev describe it.

    Read from sysfs without opening the port. USB fields are ``None`` for
    ports that are not on USB (a UART on the mainboard, a pty), and for
    strings the device does not report.

    Attributes:
      device: the device node, such as ``/dev/ttyUSB0`` or ``/dev/pts/3``: the
        path to open. Its number is whatever the kernel picked this time.
      by_id: the ``/dev/serial/by-id`` link to it, stable for one adapter
        (built from its USB identity), or ``None`` (no udev, or not USB).
      by_path: the ``/dev/serial/by-path`` link, stable for one USB socket.
      vid: USB vendor id (``0x0403`` for FTDI).
      pid: USB product id.
      serial_number: the USB serial number string, what tells twins apart.
      manufacturer: the USB manufacturer string.
      product: the USB product string.
      interface: the USB interface's own name string, for adapters whose
        interfaces have one (dual and quad FTDI parts, for instance).
      interface_number: the USB interface number (``bInterfaceNumber``):
        which port of a multi-port adapter this is.
      driver: the kernel driver (``ftdi_sio``, ``cp210x``, ``cdc_acm``,
        ``serial`` for a mainboard UART), or ``None``.
      is_pty: whether this is a pseudo-terminal (ptys are not hardware and
        have no sysfs entry; they appear here only when named by a path).
    """

    device: str
    by_id: str | None = None
    by_path: str | None = None
    vid: int | None = attrs.field(default=None, validator=_check_usb_id("vid"))
    pid: int | None = attrs.field(default=None, validator=_check_usb_id("pid"))
    serial_number: str | None = None
    manufacturer: str | None = None
    product: str | None = None
    interface: str | None = None
    interface_number: int | None = None
    driver: str | None = None
    is_pty: bool = False

    @property
    def usb_id(self) -> str | None:
        """``"vvvv:pppp"`` in hex as ``lsusb`` prints it, or ``None`` if not USB."""
        if self.vid is None or self.pid is None:
            return None
        return f"{self.vid:04x}:{self.pid:04x}"

    @property
    def paths(self) -> tuple[str, ...]:
        """Every name of this port, the device node first, then its udev links."""
        return tuple(p for p in (self.device, self.by_id, self.by_path) if p is not None)


@attrs.frozen
class PortEvent:
    """A port that appeared or went away, from :func:`~trioserial.watch_ports`.

    Attributes:
      kind: ``"added"`` or ``"removed"``.
      port: the port; for ``"removed"``, as it was last seen.
    """

    kind: Literal["added", "removed"]
    port: PortInfo


class AmbiguousPortError(SerialPortError):
    """More than one port matches what :func:`~trioserial.wait_for_port` was asked for.

    The message names every match. Pass a narrower identity (a serial number,
    ``path=``), or ``first=True`` to take the first in device-name order.
    """


_DIGITS = re.compile(r"(\d+)")


def port_sort_key(device: str) -> tuple[tuple[int, str], ...]:
    """Order device names as people do: ``ttyUSB2`` before ``ttyUSB10``."""
    return tuple(
        (int(part), "") if part.isdigit() else (-1, part) for part in _DIGITS.split(device)
    )


def _identity(port: PortInfo) -> tuple[object, ...]:
    return (port.vid, port.pid, port.serial_number, port.interface_number, port.is_pty)


def diff_ports(old: Mapping[str, PortInfo], new: Mapping[str, PortInfo]) -> list[PortEvent]:
    """The events that turn snapshot *old* into *new* (both keyed by device).

    Removals come first, then additions, each in device-name order. A device
    name that now belongs to another adapter (the old one unplugged, a new one
    given its number before the two scans) is a removal and an addition. A
    port whose links alone changed (udev made them after the kernel announced
    the device) is the same port: no event.
    """
    events = [
        PortEvent("removed", port)
        for device, port in old.items()
        if device not in new or _identity(new[device]) != _identity(port)
    ]
    events += [
        PortEvent("added", port)
        for device, port in new.items()
        if device not in old or _identity(old[device]) != _identity(port)
    ]
    events.sort(key=lambda e: (e.kind != "removed", port_sort_key(e.port.device)))
    return events


def _check_text(_: object, attribute: attrs.Attribute[str | None], value: object) -> None:
    if value is not None and not isinstance(value, str):
        raise TypeError(f"{attribute.name} must be a string or None, got {value!r}")


@attrs.frozen(kw_only=True)
class PortQuery:
    """Which ports a caller wants: every given criterion must hold.

    *vid*, *pid* and *serial_number* compare with the USB identity; *path*
    matches a port by any of its names (device node, by-id or by-path link, or
    another symlink to it, resolved by the caller into *path_target*); *match*
    is the caller's own predicate. With nothing given, every port matches.
    """

    vid: int | None = attrs.field(default=None, validator=_check_usb_id("vid"))
    pid: int | None = attrs.field(default=None, validator=_check_usb_id("pid"))
    serial_number: str | None = attrs.field(default=None, validator=_check_text)
    path: str | None = attrs.field(default=None, validator=_check_text)
    match: Callable[[PortInfo], bool] | None = None

    def __attrs_post_init__(self) -> None:
        if self.match is not None and not callable(self.match):
            raise TypeError(
                f"match must be a callable taking a PortInfo and returning a bool, "
                f"got {self.match!r}"
            )
        if self.path == "":
            raise ValueError("path must be a device path or link, got ''")

    def matches(self, port: PortInfo, path_target: str | None = None) -> bool:
        """Whether *port* is wanted; *path_target* is what ``path`` resolves to now."""
        if self.vid is not None and port.vid != self.vid:
            return False
        if self.pid is not None and port.pid != self.pid:
            return False
        if self.serial_number is not None and port.serial_number != self.serial_number:
            return False
        if self.path is not None and not (
            self.path in port.paths or (path_target is not None and path_target == port.device)
        ):
            return False
        return self.match is None or bool(self.match(port))

    def choose(
        self,
        ports: Iterable[PortInfo],
        path_target: str | None = None,
        *,
        first: bool = False,
        advice: str = "narrow the query (serial_number=, path=) or pass first=True",
    ) -> PortInfo | None:
        """The one port wanted among *ports*, ``None`` if none is.

        Raises:
          AmbiguousPortError: more than one matches and *first* is false;
            its message ends with *advice* (what the caller's API offers).
        """
        found = sorted(
            (p for p in ports if self.matches(p, path_target)),
            key=lambda p: port_sort_key(p.device),
        )
        if len(found) > 1 and not first:
            names = ", ".join(p.by_id or p.device for p in found)
            raise AmbiguousPortError(
                f"{len(found)} serial ports match {self.describe()}: {names}; {advice}",
                port=found[0].device,
            )
        return found[0] if found else None

    def describe(self) -> str:
        """The criteria as a message shows them: ``vid=0x0403, serial_number='A1'``."""
        parts = []
        if self.vid is not None:
            parts.append(f"vid=0x{self.vid:04x}")
        if self.pid is not None:
            parts.append(f"pid=0x{self.pid:04x}")
        if self.serial_number is not None:
            parts.append(f"serial_number={self.serial_number!r}")
        if self.path is not None:
            parts.append(f"path={self.path!r}")
        if self.match is not None:
            parts.append(f"match={getattr(self.match, '__qualname__', repr(self.match))}")
        return ", ".join(parts) or "any port"
