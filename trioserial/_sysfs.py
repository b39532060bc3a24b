"""Reading the serial ports of this machine from sysfs (layer 1, file system, no loop).

Every tty the kernel registers has a directory in ``/sys/class/tty``; those
with a ``device`` link are hardware (virtual consoles and ``/dev/tty`` have
none). A ``serial_core`` port whose ``type`` is 0 has no UART behind it (the
kernel registers ``ttyS0``..``ttyS3`` whether or not they exist) and is
skipped. USB details come from the first ancestor of the device that has an
``idVendor`` file, the USB device; the directory just below it is the
interface. Nothing is opened but sysfs attribute files: no port is touched.

The reads are a few dozen ``stat``/``readlink``/small reads of in-memory
kernel attributes (USB strings are cached at enumeration: nothing touches the
bus): 0.3 ms for the 70 ttys of this VM. ``list_ports`` runs them in a worker
thread; the watchers run them inline after a tty uevent, where a thread hop
would add latency (``benchmarks/ports.py``).
"""

from __future__ import annotations

import os
import stat
from typing import Final

from ._portinfo import PortInfo, port_sort_key
from ._resolve import udev_links

__all__ = ["DEV", "SYSFS", "describe_path", "read_ports"]

SYSFS: Final = "/sys"
DEV: Final = "/dev"
#: Unix98 pty slaves (``/dev/pts/N``) use majors 136 to 143 (devices.txt).
_PTY_MAJORS: Final = range(136, 144)
#: How far above a tty's device its USB device may be (usb-serial: 2, cdc_acm: 1).
_USB_DEPTH: Final = 4


def _read(path: str) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read(4096).strip() or None
    except OSError:
        return None


def _link_name(path: str) -> str | None:
    try:
        return os.path.basename(os.readlink(path))
    except OSError:
        return None


def _hex(text: str | None) -> int | None:
    try:
        value = int(text, 16) if text else None
    except ValueError:
        return None
    return value if value is not None and 0 <= value <= 0xFFFF else None


def _driver(device_dir: str, sysfs: str) -> str | None:
    """The driver of *device_dir*, looking past the kernel's ``serial-base`` layer.

    Since Linux 6.5 a UART's ``device`` is a ``serial-base`` port whose
    driver is called ``port``; the driver that found the UART (``serial``
    for a PNP 16550, ``dw-apb-uart``...) is on an ancestor.
    """
    top = os.path.join(sysfs, "devices")
    current = device_dir
    while current.startswith(top) and current != top:
        if _link_name(os.path.join(current, "subsystem")) != "serial-base":
            return _link_name(os.path.join(current, "driver"))
        current = os.path.dirname(current)
    return None


def _usb_fields(device_dir: str, sysfs: str) -> dict[str, object]:
    top = os.path.join(sysfs, "devices")
    child, current = None, device_dir
    for _ in range(_USB_DEPTH):
        if not current.startswith(top) or current == top:
            return {}
        if os.path.exists(os.path.join(current, "idVendor")):
            break
        child, current = current, os.path.dirname(current)
    else:
        return {}
    fields: dict[str, object] = {
        "vid": _hex(_read(os.path.join(current, "idVendor"))),
        "pid": _hex(_read(os.path.join(current, "idProduct"))),
        "serial_number": _read(os.path.join(current, "serial")),
        "manufacturer": _read(os.path.join(current, "manufacturer")),
        "product": _read(os.path.join(current, "product")),
    }
    if child is not None:
        fields["interface"] = _read(os.path.join(child, "interface"))
        number = _hex(_read(os.path.join(child, "bInterfaceNumber")))
        fields["interface_number"] = number
    return fields


def _tty_port(
    tty_dir: str, name: str, sysfs: str, dev: str, links: tuple[dict[str, str], dict[str, str]]
) -> PortInfo | None:
    """The port of one ``/sys/class/tty/NAME`` directory, or ``None`` if it is no hardware."""
    device_link = os.path.join(tty_dir, "device")
    if not os.path.exists(device_link):
        return None  # virtual: consoles, /dev/tty, ptmx
    if _read(os.path.join(tty_dir, "type")) == "0":
        return None  # a serial_core slot with no UART behind it
    devname = name
    for line in (_read(os.path.join(tty_dir, "uevent")) or "").splitlines():
        key, _, value = line.partition("=")
        if key == "DEVNAME" and value and ".." not in value.split("/"):
            devname = value
    device = os.path.join(dev, devname)
    device_dir = os.path.realpath(device_link)
    real = os.path.realpath(device)
    by_id, by_path = links
    return PortInfo(
        device=device,
        by_id=by_id.get(real),
        by_path=by_path.get(real),
        driver=_driver(device_dir, sysfs),
        **_usb_fields(device_dir, sysfs),  # type: ignore[arg-type]
    )


def _links(dev: str) -> tuple[dict[str, str], dict[str, str]]:
    return (
        udev_links(os.path.join(dev, "serial", "by-id")),
        udev_links(os.path.join(dev, "serial", "by-path")),
    )


def describe_path(
    path: str,
    *,
    sysfs: str = SYSFS,
    dev: str = DEV,
    links: tuple[dict[str, str], dict[str, str]] | None = None,
) -> PortInfo | None:
    """The port that *path* (a device node or a symlink to one) names now.

    ``None`` if nothing is there, or it is not a tty (a tty without hardware
    behind it, such as ``/dev/tty1``, is described too: it was asked for by
    name). A pty is described from its path alone, having no sysfs entry.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISCHR(st.st_mode):
        return None
    sysfs = os.path.realpath(sysfs)
    links = _links(dev) if links is None else links
    major, minor = os.major(st.st_rdev), os.minor(st.st_rdev)
    real = os.path.realpath(path)
    if major in _PTY_MAJORS:
        by_id, by_path = links
        return PortInfo(device=real, by_id=by_id.get(real), by_path=by_path.get(real), is_pty=True)
    tty_dir = os.path.realpath(os.path.join(sysfs, "dev", "char", f"{major}:{minor}"))
    if _link_name(os.path.join(tty_dir, "subsystem")) != "tty":
        return None
    port = _tty_port(tty_dir, os.path.basename(tty_dir), sysfs, os.path.dirname(real), links)
    if port is None:
        return PortInfo(device=real, by_id=links[0].get(real), by_path=links[1].get(real))
    return port


def read_ports(*, sysfs: str = SYSFS, dev: str = DEV) -> list[PortInfo]:
    """The serial ports of this machine, in device-name order. Blocking (sysfs reads).

    Hardware ttys from ``SYSFS/class/tty``, plus whatever a
    ``DEV/serial/by-id`` or ``by-path`` link points at that is not among them.
    """
    sysfs = os.path.realpath(sysfs)
    links = _links(dev)
    found: dict[str, PortInfo] = {}
    class_dir = os.path.join(sysfs, "class", "tty")
    try:
        names = os.listdir(class_dir)
    except OSError:
        names = []
    for name in names:
        port = _tty_port(os.path.join(class_dir, name), name, sysfs, dev, links)
        if port is not None:
            found[os.path.realpath(port.device)] = port
    for mapping in links:
        for real, link in mapping.items():
            if real not in found:
                port = describe_path(link, sysfs=sysfs, dev=dev, links=links)
                if port is not None:
                    found[real] = port
    return sorted(found.values(), key=lambda p: port_sort_key(p.device))
