"""Parsing netlink uevent datagrams, with no socket and no event loop.

The kernel message is one this machine's kernel sent when ``add`` was written
to ``/sys/class/tty/tty63/uevent``; the libudev one is built the way udevd's
``device_monitor_send_device`` lays it out (header, then the same fields).
"""

from __future__ import annotations

import struct

import pytest

from trioserial._uevent import MAX_FIELDS, UEvent, parse_uevent

KERNEL = (
    b"add@/devices/virtual/tty/tty63\x00ACTION=add\x00DEVPATH=/devices/virtual/tty/tty63\x00"
    b"SUBSYSTEM=tty\x00SYNTH_UUID=0\x00MAJOR=4\x00MINOR=63\x00DEVNAME=tty63\x00SEQNUM=825\x00"
)
USB_REMOVE = (
    b"remove@/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/ttyUSB0/tty/ttyUSB0\x00"
    b"ACTION=remove\x00DEVPATH=/devices/pci0000:00/0000:00:14.0/usb1/1-2/1-2:1.0/ttyUSB0/"
    b"tty/ttyUSB0\x00SUBSYSTEM=tty\x00MAJOR=188\x00MINOR=0\x00DEVNAME=ttyUSB0\x00SEQNUM=4242\x00"
)


def libudev(fields: bytes, *, magic: int = 0xFEEDCAFE, offset: int = 40) -> bytes:
    header = struct.pack(
        "=8s4sIII", b"libudev\x00", magic.to_bytes(4, "big"), 40, offset, len(fields)
    )
    return header + b"\x00" * (offset - len(header)) + fields


def test_kernel_event() -> None:
    event = parse_uevent(KERNEL)
    assert event is not None
    assert (event.action, event.devpath, event.subsystem, event.devname, event.from_udev) == (
        "add",
        "/devices/virtual/tty/tty63",
        "tty",
        "tty63",
        False,
    )
    assert event.properties["SEQNUM"] == "825"
    remove = parse_uevent(USB_REMOVE)
    assert remove is not None
    assert (remove.action, remove.devname) == ("remove", "ttyUSB0")


def test_udev_event() -> None:
    fields = KERNEL.partition(b"\x00")[2] + b"DEVLINKS=/dev/serial/by-id/x\x00"
    event = parse_uevent(libudev(fields))
    assert event == UEvent(
        action="add",
        devpath="/devices/virtual/tty/tty63",
        subsystem="tty",
        devname="tty63",
        from_udev=True,
        properties=event.properties if event else {},
    )
    assert event is not None
    assert event.properties["DEVLINKS"] == "/dev/serial/by-id/x"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        b"add@/devices/x",  # no field terminator
        b"no at sign\x00ACTION=add\x00DEVPATH=/x\x00",
        b"add@/x\x00ACTION=add\x00",  # no DEVPATH
        b"add@/x\x00DEVPATH=/x\x00",  # no ACTION
        b"add@/x\x00ACTION=add\x00garbage\x00DEVPATH=/x\x00",
        b"libudev\x00short",
        libudev(b"ACTION=add\x00DEVPATH=/x\x00", magic=0xDEADBEEF),
        libudev(b"ACTION=add\x00DEVPATH=/x\x00", offset=8),  # offset inside the header
        libudev(b"ACTION=add\x00DEVPATH=/x\x00")[:-4],  # fields run past the end
    ],
)
def test_malformed_datagrams_are_not_events(data: bytes) -> None:
    assert parse_uevent(data) is None


def test_field_count_is_bounded() -> None:
    many = b"".join(b"K%d=v\x00" % i for i in range(10 * MAX_FIELDS))
    event = parse_uevent(b"add@/x\x00ACTION=add\x00DEVPATH=/x\x00" + many)
    assert event is not None
    assert len(event.properties) <= MAX_FIELDS + 1


def test_bytes_that_are_not_utf8_do_not_raise() -> None:
    event = parse_uevent(b"add@/x\x00ACTION=add\x00DEVPATH=/x\x00DEVNAME=tty\xff\x00")
    assert event is not None
    assert event.devname == "tty\ufffd"
