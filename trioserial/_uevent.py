"""Kernel uevent messages, as read from a ``NETLINK_KOBJECT_UEVENT`` socket (layer 0, sans-IO).

Two senders multicast on that socket family. The kernel (group 1) sends
``ACTION@DEVPATH`` then ``KEY=VALUE`` fields, each ending in a NUL. udevd
(group 2), once it has run its rules and made the ``/dev/serial`` links,
re-sends the event in libudev's framing: a header starting ``libudev\\0``,
a magic number, and the offset and length of the same ``KEY=VALUE`` fields.
:func:`parse_uevent` reads both and returns ``None`` for anything else.

The bytes come from another process (udevd) or the kernel; they are parsed
with bounds checks and a cap on fields, never trusted to be well formed.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from typing import Final

import attrs

__all__ = ["UEvent", "parse_uevent"]

#: libudev's header: prefix, magic (big-endian), then host-order sizes.
_LIBUDEV_PREFIX: Final = b"libudev\x00"
_LIBUDEV_MAGIC: Final = (0xFEEDCAFE).to_bytes(4, "big")
_LIBUDEV_HEADER: Final = struct.Struct("=8s4sIII")
#: More fields than any real uevent carries (a USB device sends about 15).
MAX_FIELDS: Final = 256


@attrs.frozen
class UEvent:
    """One device event.

    Attributes:
      action: ``add``, ``remove``, ``change``, ``bind``, ``unbind``, ``move``...
      devpath: the device's sysfs path below ``/sys``.
      subsystem: ``tty``, ``usb``, ``usb-serial``...; ``""`` if not given.
      devname: the node below ``/dev`` (``ttyUSB0``), or ``None``.
      from_udev: whether udevd sent it (after its rules ran), not the kernel.
      properties: every ``KEY=VALUE`` field.
    """

    action: str
    devpath: str
    subsystem: str
    devname: str | None
    from_udev: bool
    properties: Mapping[str, str]


def _fields(data: bytes) -> dict[str, str] | None:
    props: dict[str, str] = {}
    for raw in data.split(b"\x00")[: MAX_FIELDS + 1]:
        if not raw:
            continue
        key, sep, value = raw.partition(b"=")
        if not sep or not key:
            return None
        props[key.decode("ascii", "replace")] = value.decode("utf-8", "replace")
    return props


def parse_uevent(data: bytes) -> UEvent | None:
    """The event in one netlink datagram, or ``None`` if it is not a well-formed uevent."""
    from_udev = data.startswith(_LIBUDEV_PREFIX)
    if from_udev:
        if len(data) < _LIBUDEV_HEADER.size:
            return None
        _, magic, header_size, offset, length = _LIBUDEV_HEADER.unpack_from(data)
        if magic != _LIBUDEV_MAGIC:
            return None
        if header_size < _LIBUDEV_HEADER.size or offset < header_size:
            return None
        if offset + length > len(data):
            return None
        props = _fields(data[offset : offset + length])
    else:
        head, sep, rest = data.partition(b"\x00")
        if not sep or b"@" not in head:
            return None
        props = _fields(rest)
    if props is None:
        return None
    action, devpath = props.get("ACTION"), props.get("DEVPATH")
    if not action or not devpath:
        return None
    return UEvent(
        action=action,
        devpath=devpath,
        subsystem=props.get("SUBSYSTEM", ""),
        devname=props.get("DEVNAME") or None,
        from_udev=from_udev,
        properties=props,
    )
