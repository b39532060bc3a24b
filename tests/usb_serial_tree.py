"""The sysfs and /dev entries of four USB serial adapters, built into a directory.

``build(root)`` makes ``root/sys`` and ``root/dev`` as the Linux driver core
and udev lay them out; ``tests/data/usb-serial-tree.md`` says where every
value comes from. The tree is built when the tests run rather than committed
because, like the real sysfs, it is full of symlink cycles (``device`` points
at a parent) that mypy, pytest and packaging tools would walk into.
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

HCD = "devices/pci0000:00/0000:00:14.0/usb1"


def write(path: Path, **files: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).write_text(text + "\n")


def link(path: Path, target: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(os.path.relpath(target, path.parent))


class _Tree:
    def __init__(self, root: Path) -> None:
        self.sys = root / "sys"
        self.dev = root / "dev"
        (self.sys / "class" / "tty").mkdir(parents=True)
        self.dev.mkdir()

    def bus(self, path: Path, name: str, driver: str | None = None) -> None:
        """*path*'s ``subsystem`` (and ``driver``) links, as the driver core makes them."""
        link(path / "subsystem", self.sys / "bus" / name)
        if driver is not None:
            (self.sys / "bus" / name / "drivers" / driver).mkdir(parents=True, exist_ok=True)
            link(path / "driver", self.sys / "bus" / name / "drivers" / driver)

    def tty(self, parent: Path, name: str, major: int, minor: int, **extra: str) -> None:
        """``parent/tty/NAME``: the tty class device, its class and dev/char links."""
        node = parent / "tty" / name
        uevent = f"MAJOR={major}\nMINOR={minor}\nDEVNAME={name}"
        write(node, dev=f"{major}:{minor}", uevent=uevent, **extra)
        link(node / "device", parent)
        link(node / "subsystem", self.sys / "class" / "tty")
        link(self.sys / "class" / "tty" / name, node)
        link(self.sys / "dev" / "char" / f"{major}:{minor}", node)
        (self.dev / name).touch()  # stands in for the device node

    def usb_device(self, port: str, **strings: str) -> Path:
        path = self.sys / HCD / port
        write(path, busnum="1", **strings)
        self.bus(path, "usb", "usb")
        return path

    def interface(self, device: Path, number: int, driver: str, name: str | None = None) -> Path:
        path = device / f"{device.name}:1.{number}"
        write(path, bInterfaceNumber=f"{number:02x}", bInterfaceClass="ff")
        if name is not None:
            write(path, interface=name)
        self.bus(path, "usb", driver)
        return path

    def usb_serial_port(self, intf: Path, name: str, driver: str, minor: int) -> None:
        port = intf / name
        write(port, port_number="0")
        self.bus(port, "usb-serial", driver)
        self.tty(port, name, 188, minor)

    def by(self, kind: str, name: str, target: str) -> None:
        link(self.dev / "serial" / kind / name, self.dev / target)


def build(root: Path) -> None:
    """Make ``root/sys`` and ``root/dev``; *root* must not hold them yet."""
    t = _Tree(root)

    # An FT232R (ftdi_sio_ids.h: FTDI_VID 0x0403, FTDI_8U232AM_PID 0x6001).
    ft232 = t.usb_device(
        "1-2", idVendor="0403", idProduct="6001", serial="A10K1234",
        manufacturer="FTDI", product="FT232R USB UART",
    )  # fmt: skip
    t.usb_serial_port(t.interface(ft232, 0, "ftdi_sio"), "ttyUSB0", "ftdi_sio", 0)
    t.by("by-id", "usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0", "ttyUSB0")
    t.by("by-path", "pci-0000:00:14.0-usb-0:2:1.0-port0", "ttyUSB0")

    # An FT2232H, two ports on one serial number (FTDI_8U2232C_PID 0x6010); its
    # interfaces carry the product string as their own name.
    ft2232 = t.usb_device(
        "1-3", idVendor="0403", idProduct="6010", serial="FT5XJ2AB",
        manufacturer="FTDI", product="Dual RS232-HS",
    )  # fmt: skip
    for n in (0, 1):
        intf = t.interface(ft2232, n, "ftdi_sio", "Dual RS232-HS")
        t.usb_serial_port(intf, f"ttyUSB{1 + n}", "ftdi_sio", 1 + n)
        t.by("by-id", f"usb-FTDI_Dual_RS232-HS_FT5XJ2AB-if0{n}-port0", f"ttyUSB{1 + n}")
        t.by("by-path", f"pci-0000:00:14.0-usb-0:3:1.{n}-port0", f"ttyUSB{1 + n}")

    # A CP2102 (cp210x.c: 0x10C4, 0xEA60; serial 0001 is its factory default).
    cp2102 = t.usb_device(
        "1-4", idVendor="10c4", idProduct="ea60", serial="0001",
        manufacturer="Silicon Labs", product="CP2102 USB to UART Bridge Controller",
    )  # fmt: skip
    intf = t.interface(cp2102, 0, "cp210x", "CP2102 USB to UART Bridge Controller")
    t.usb_serial_port(intf, "ttyUSB3", "cp210x", 3)
    t.by(
        "by-id",
        "usb-Silicon_Labs_CP2102_USB_to_UART_Bridge_Controller_0001-if00-port0",
        "ttyUSB3",
    )

    # A Raspberry Pi Pico's USB CDC stdio (pico-sdk: 0x2E8A, 0x000A): cdc_acm
    # puts the tty right under the interface, with no usb-serial port between.
    pico = t.usb_device(
        "1-5", idVendor="2e8a", idProduct="000a", serial="E6614103E7176D2F",
        manufacturer="Raspberry Pi", product="Pico",
    )  # fmt: skip
    t.tty(t.interface(pico, 0, "cdc_acm", "Board CDC"), "ttyACM0", 166, 0)
    t.by("by-id", "usb-Raspberry_Pi_Pico_E6614103E7176D2F-if00", "ttyACM0")

    # A 16550A found by PNP, behind the serial-base layer of Linux 6.5+.
    pnp = t.sys / "devices/pnp0/00:04"
    write(pnp, id="PNP0501")
    t.bus(pnp, "pnp", "serial")
    t.bus(pnp / "00:04:0", "serial-base", "ctrl")
    t.bus(pnp / "00:04:0/00:04:0.0", "serial-base", "port")
    t.tty(pnp / "00:04:0/00:04:0.0", "ttyS0", 4, 64, type="4")

    # A serial8250 slot with no UART: type 0, never a port.
    ctrl = t.sys / "devices/platform/serial8250/serial8250:0"
    t.bus(ctrl.parent, "platform", "serial8250")
    t.bus(ctrl, "serial-base", "ctrl")
    t.bus(ctrl / "serial8250:0.1", "serial-base", "port")
    t.tty(ctrl / "serial8250:0.1", "ttyS1", 4, 65, type="0")

    # A virtual console: no device link, never a port.
    node = t.sys / "devices/virtual/tty/tty0"
    write(node, dev="4:0", uevent="MAJOR=4\nMINOR=0\nDEVNAME=tty0")
    link(t.sys / "class" / "tty" / "tty0", node)


@functools.cache
def shared_tree() -> Path:
    """One tree per test process, read-only by convention (copy it to change it)."""
    root = Path(tempfile.mkdtemp(prefix="trioserial-ports-tree-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    build(root)
    return root
