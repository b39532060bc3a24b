"""Build ``usb-serial-tree/``: the sysfs and /dev entries of four USB serial adapters.

Run ``python tests/data/make_usb_serial_tree.py`` to rebuild it; the tree is
committed (git keeps the symlinks), and README.md there says where every
value comes from.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent / "usb-serial-tree"
SYS = ROOT / "sys"
DEV = ROOT / "dev"
HCD = "devices/pci0000:00/0000:00:14.0/usb1"


def write(path: Path, **files: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (path / name).write_text(text + "\n")


def link(path: Path, target: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(os.path.relpath(target, path.parent))


def bus(path: Path, name: str, driver: str | None = None) -> None:
    """*path*'s ``subsystem`` (and ``driver``) links, as the driver core makes them."""
    link(path / "subsystem", SYS / "bus" / name)
    if driver is not None:
        (SYS / "bus" / name / "drivers" / driver).mkdir(parents=True, exist_ok=True)
        link(path / "driver", SYS / "bus" / name / "drivers" / driver)


def tty(parent: Path, name: str, major: int, minor: int, **extra: str) -> Path:
    """``parent/tty/NAME``: the tty class device, its class and dev/char links."""
    node = parent / "tty" / name
    write(node, dev=f"{major}:{minor}", uevent=f"MAJOR={major}\nMINOR={minor}\nDEVNAME={name}")
    write(node, **extra)
    link(node / "device", parent)
    link(node / "subsystem", SYS / "class" / "tty")
    link(SYS / "class" / "tty" / name, node)
    link(SYS / "dev" / "char" / f"{major}:{minor}", node)
    (DEV / name).touch()
    return node


def usb_device(port: str, **strings: str) -> Path:
    path = SYS / HCD / port
    write(path, busnum="1", devnum=str(len(port)), **strings)
    bus(path, "usb", "usb")
    return path


def interface(device: Path, number: int, driver: str, name: str | None = None) -> Path:
    path = device / f"{device.name}:1.{number}"
    write(path, bInterfaceNumber=f"{number:02x}", bInterfaceClass="ff")
    if name is not None:
        write(path, interface=name)
    bus(path, "usb", driver)
    return path


def usb_serial_port(intf: Path, name: str, driver: str, minor: int) -> None:
    port = intf / name
    write(port, port_number="0")
    bus(port, "usb-serial", driver)
    tty(port, name, 188, minor)


def by(kind: str, name: str, target: str) -> None:
    link(DEV / "serial" / kind / name, DEV / target)


def main() -> None:
    shutil.rmtree(ROOT, ignore_errors=True)
    (SYS / "class" / "tty").mkdir(parents=True)
    DEV.mkdir()

    # An FT232R (ftdi_sio_ids.h: FTDI_VID 0x0403, FTDI_8U232AM_PID 0x6001).
    ft232 = usb_device(
        "1-2", idVendor="0403", idProduct="6001", serial="A10K1234",
        manufacturer="FTDI", product="FT232R USB UART",
    )  # fmt: skip
    usb_serial_port(interface(ft232, 0, "ftdi_sio"), "ttyUSB0", "ftdi_sio", 0)
    by("by-id", "usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0", "ttyUSB0")
    by("by-path", "pci-0000:00:14.0-usb-0:2:1.0-port0", "ttyUSB0")

    # An FT2232H, two ports on one serial number (FTDI_8U2232C_PID 0x6010); its
    # interfaces carry the product string as their own name.
    ft2232 = usb_device(
        "1-3", idVendor="0403", idProduct="6010", serial="FT5XJ2AB",
        manufacturer="FTDI", product="Dual RS232-HS",
    )  # fmt: skip
    for number in (0, 1):
        intf = interface(ft2232, number, "ftdi_sio", "Dual RS232-HS")
        usb_serial_port(intf, f"ttyUSB{1 + number}", "ftdi_sio", 1 + number)
        by("by-id", f"usb-FTDI_Dual_RS232-HS_FT5XJ2AB-if0{number}-port0", f"ttyUSB{1 + number}")
        by("by-path", f"pci-0000:00:14.0-usb-0:3:1.{number}-port0", f"ttyUSB{1 + number}")

    # A CP2102 (cp210x.c: 0x10C4, 0xEA60; serial 0001 is its factory default).
    cp2102 = usb_device(
        "1-4", idVendor="10c4", idProduct="ea60", serial="0001",
        manufacturer="Silicon Labs", product="CP2102 USB to UART Bridge Controller",
    )  # fmt: skip
    intf = interface(cp2102, 0, "cp210x", "CP2102 USB to UART Bridge Controller")
    usb_serial_port(intf, "ttyUSB3", "cp210x", 3)
    by(
        "by-id",
        "usb-Silicon_Labs_CP2102_USB_to_UART_Bridge_Controller_0001-if00-port0",
        "ttyUSB3",
    )

    # A Raspberry Pi Pico's USB CDC stdio (pico-sdk: 0x2E8A, 0x000A): cdc_acm
    # puts the tty right under the interface, with no usb-serial port between.
    pico = usb_device(
        "1-5", idVendor="2e8a", idProduct="000a", serial="E6614103E7176D2F",
        manufacturer="Raspberry Pi", product="Pico",
    )  # fmt: skip
    tty(interface(pico, 0, "cdc_acm", "Board CDC"), "ttyACM0", 166, 0)
    by("by-id", "usb-Raspberry_Pi_Pico_E6614103E7176D2F-if00", "ttyACM0")

    # A 16550A found by PNP, behind the serial-base layer of Linux 6.5+.
    pnp = SYS / "devices/pnp0/00:04"
    write(pnp, id="PNP0501")
    bus(pnp, "pnp", "serial")
    ctrl = pnp / "00:04:0"
    bus(ctrl, "serial-base", "ctrl")
    port = ctrl / "00:04:0.0"
    bus(port, "serial-base", "port")
    tty(port, "ttyS0", 4, 64, type="4")

    # A serial8250 slot with no UART: type 0, never a port.
    ctrl = SYS / "devices/platform/serial8250/serial8250:0"
    bus(ctrl.parent, "platform", "serial8250")
    bus(ctrl, "serial-base", "ctrl")
    bus(ctrl / "serial8250:0.1", "serial-base", "port")
    tty(ctrl / "serial8250:0.1", "ttyS1", 4, 65, type="0")

    # A virtual console: no device link, never a port.
    node = SYS / "devices/virtual/tty/tty0"
    write(node, dev="4:0", uevent="MAJOR=4\nMINOR=0\nDEVNAME=tty0")
    link(SYS / "class" / "tty" / "tty0", node)


if __name__ == "__main__":
    main()
