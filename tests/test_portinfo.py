"""PortInfo, PortQuery, diff_ports and the sysfs reader, with no event loop.

USB identities come from the tree ``tests/usb_serial_tree.py`` builds: the
sysfs layout of FTDI, CP210x and CDC-ACM adapters
(``tests/data/usb-serial-tree.md`` says where each value comes from), since
this machine has no USB serial adapter. Ptys are real.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from usb_serial_tree import shared_tree

from trioserial import AmbiguousPortError, PortEvent, PortInfo
from trioserial._portinfo import PortQuery, diff_ports, port_sort_key
from trioserial._sysfs import describe_path, read_ports

TREE = shared_tree()
SYS, DEV = str(TREE / "sys"), str(TREE / "dev")


def dev(name: str) -> str:
    return os.path.join(DEV, name)


FT232R = PortInfo(
    device=dev("ttyUSB0"),
    by_id=dev("serial/by-id/usb-FTDI_FT232R_USB_UART_A10K1234-if00-port0"),
    by_path=dev("serial/by-path/pci-0000:00:14.0-usb-0:2:1.0-port0"),
    vid=0x0403,
    pid=0x6001,
    serial_number="A10K1234",
    manufacturer="FTDI",
    product="FT232R USB UART",
    interface_number=0,
    driver="ftdi_sio",
)


def test_read_ports_from_a_recorded_sysfs_tree() -> None:
    ports = read_ports(sysfs=SYS, dev=DEV)
    assert [p.device for p in ports] == [
        dev(n) for n in ("ttyACM0", "ttyS0", "ttyUSB0", "ttyUSB1", "ttyUSB2", "ttyUSB3")
    ]  # ttyS1 (a slot with no UART) and tty0 (virtual) are no ports
    acm, uart, ft232r, dual_a, dual_b, cp2102 = ports
    assert ft232r == FT232R
    assert ft232r.usb_id == "0403:6001"
    assert (dual_a.interface_number, dual_b.interface_number) == (0, 1)
    assert dual_b.by_id == dev("serial/by-id/usb-FTDI_Dual_RS232-HS_FT5XJ2AB-if01-port0")
    assert dual_a.serial_number == dual_b.serial_number == "FT5XJ2AB"
    assert (cp2102.usb_id, cp2102.driver, cp2102.by_path) == ("10c4:ea60", "cp210x", None)
    assert cp2102.interface == "CP2102 USB to UART Bridge Controller"
    # cdc_acm: the tty hangs right under the interface.
    assert (acm.usb_id, acm.driver, acm.product, acm.interface) == (
        "2e8a:000a",
        "cdc_acm",
        "Pico",
        "Board CDC",
    )
    # A UART behind the serial-base layer: the driver is the one that found it.
    assert uart == PortInfo(device=dev("ttyS0"), driver="serial")


def test_read_ports_of_a_missing_tree_is_empty(tmp_path: Path) -> None:
    assert read_ports(sysfs=str(tmp_path / "sys"), dev=str(tmp_path / "dev")) == []


def test_read_ports_of_this_machine_never_lists_virtual_ttys() -> None:
    for port in read_ports():
        assert not port.device.startswith(("/dev/tty0", "/dev/console", "/dev/ptmx"))
        assert not port.is_pty


@pytest.fixture
def pty() -> Iterator[str]:
    controller, device = os.openpty()
    try:
        yield os.ttyname(device)
    finally:
        os.close(device)
        os.close(controller)


def test_describe_path_of_a_pty_behind_a_symlink(tmp_path: Path, pty: str) -> None:
    link = tmp_path / "board"
    link.symlink_to(pty)
    assert describe_path(str(link)) == PortInfo(device=pty, is_pty=True)
    assert describe_path(str(tmp_path / "absent")) is None
    assert describe_path(os.devnull) is None  # a character device, but no tty
    (tmp_path / "file").touch()
    assert describe_path(str(tmp_path / "file")) is None


def test_links_to_ptys_are_listed(tmp_path: Path, pty: str) -> None:
    by_id = tmp_path / "dev" / "serial" / "by-id"
    by_id.mkdir(parents=True)
    (by_id / "usb-fake").symlink_to(pty)
    (by_id / "dangling").symlink_to(tmp_path / "gone")
    ports = read_ports(sysfs=str(tmp_path / "sys"), dev=str(tmp_path / "dev"))
    assert ports == [PortInfo(device=pty, by_id=str(by_id / "usb-fake"), is_pty=True)]


# ------------------------------------------------------------------ values


@pytest.mark.parametrize("value", [-1, 0x10000, True, "0403", 1.0])
def test_usb_ids_are_checked(value: object) -> None:
    with pytest.raises(ValueError, match=r"vid must be a USB id from 0 to 0xffff or None, got"):
        PortInfo(device="/dev/x", vid=value)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"pid must be a USB id"):
        PortQuery(pid=value)  # type: ignore[arg-type]


def test_query_arguments_are_checked() -> None:
    with pytest.raises(TypeError, match=r"serial_number must be a string or None, got 1234"):
        PortQuery(serial_number=1234)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"match must be a callable"):
        PortQuery(match="ttyUSB0")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"path must be a device path or link, got ''"):
        PortQuery(path="")


def test_sort_key_is_numeric() -> None:
    names = ["/dev/ttyUSB10", "/dev/ttyACM0", "/dev/ttyUSB2", "/dev/ttyUSB1"]
    assert sorted(names, key=port_sort_key) == [
        "/dev/ttyACM0",
        "/dev/ttyUSB1",
        "/dev/ttyUSB2",
        "/dev/ttyUSB10",
    ]


# ------------------------------------------------------------------ matching

PORTS = read_ports(sysfs=SYS, dev=DEV)


def test_query_by_usb_identity() -> None:
    assert PortQuery(vid=0x0403, pid=0x6001).choose(PORTS) == FT232R
    assert PortQuery(serial_number="A10K1234").choose(PORTS) == FT232R
    assert PortQuery(vid=0x0403, serial_number="nope").choose(PORTS) is None
    assert PortQuery(vid=0x1234).choose([]) is None


def test_query_by_any_name_of_the_port() -> None:
    for name in FT232R.paths:
        assert PortQuery(path=name).choose(PORTS) == FT232R
    # Another symlink: the caller resolved it to the device.
    assert PortQuery(path="/tmp/board").choose(PORTS, FT232R.device) == FT232R
    assert PortQuery(path="/tmp/board").choose(PORTS) is None


def test_ambiguity_names_every_match_unless_first() -> None:
    query = PortQuery(vid=0x0403, pid=0x6010)
    with pytest.raises(AmbiguousPortError) as caught:
        query.choose(PORTS)
    message = str(caught.value)
    assert "2 serial ports match vid=0x0403, pid=0x6010" in message
    assert "FT5XJ2AB-if00-port0" in message
    assert "FT5XJ2AB-if01-port0" in message
    assert "first=True" in message
    assert query.choose(PORTS, first=True) == PORTS[3]
    # The twin ports told apart by a predicate.
    second = PortQuery(serial_number="FT5XJ2AB", match=lambda p: p.interface_number == 1)
    assert second.choose(PORTS) == PORTS[4]


def test_describe() -> None:
    def is_ftdi(port: PortInfo) -> bool:
        return port.vid == 0x0403

    query = PortQuery(vid=0x403, pid=0x6001, serial_number="A1", path="/dev/x", match=is_ftdi)
    assert query.describe() == (
        "vid=0x0403, pid=0x6001, serial_number='A1', path='/dev/x', "
        "match=test_describe.<locals>.is_ftdi"
    )
    assert PortQuery().describe() == "any port"


# ------------------------------------------------------------------ diffing


def test_diff_ports() -> None:
    a, b = PortInfo(device="/dev/ttyUSB0", vid=1, pid=2), PortInfo(device="/dev/ttyUSB10")
    c = PortInfo(device="/dev/ttyUSB2")
    old = {a.device: a, b.device: b}
    new = {b.device: b, c.device: c}
    assert diff_ports(old, new) == [PortEvent("removed", a), PortEvent("added", c)]
    assert diff_ports(old, old) == []
    # Links made by udev after the kernel's event: the same port, no event.
    linked = PortInfo(device="/dev/ttyUSB0", vid=1, pid=2, by_id="/dev/serial/by-id/x")
    assert diff_ports(old, {**old, a.device: linked}) == []
    # Another adapter under the same name: it went and another came.
    other = PortInfo(device="/dev/ttyUSB0", vid=1, pid=3)
    assert diff_ports(old, {**old, a.device: other}) == [
        PortEvent("removed", a),
        PortEvent("added", other),
    ]
    added = diff_ports({}, {p.device: p for p in (b, c, a)})
    assert [e.port.device for e in added] == ["/dev/ttyUSB0", "/dev/ttyUSB2", "/dev/ttyUSB10"]
