"""Device paths by symlink, alt://, hwgrep:// and spy://, on ptys and loop://."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import pytest
import trio

import trioserial
from trioserial._resolve import open_hwgrep
from trioserial._settings import SerialSettings
from trioserial._spy import hexdump


async def read_master(master: int, n: int) -> bytes:
    os.set_blocking(master, False)
    got = b""
    while len(got) < n:
        await trio.lowlevel.wait_readable(master)
        got += os.read(master, n - len(got))
    return got


async def test_by_id_symlinks_are_just_paths(tmp_path: Path) -> None:
    # /dev/serial/by-id/... are symlinks made by udev; one to a pty stands in.
    master, slave = os.openpty()
    try:
        link = tmp_path / "usb-FTDI_FT232R_USB_UART_A1B2C3-if00-port0"
        link.symlink_to(os.ttyname(slave))
        async with await trioserial.open_serial_port(link) as by_link:
            assert by_link.transport == "tty"
            await by_link.send_all(b"via link")
            assert await read_master(master, 8) == b"via link"
    finally:
        os.close(master)
        os.close(slave)


async def test_alt_opens_the_path_natively(pty_path: str) -> None:
    url = f"alt://{pty_path}?class=PosixPollSerial"
    async with await trioserial.open_serial_port(url, baudrate=9600) as port:
        assert port.transport == "tty"
        assert port.port == url
        assert port.settings.baudrate == 9600


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("alt:///dev/ttyS0?class=Nonsense", "unknown class 'Nonsense'"),
        ("alt:///dev/ttyS0?cls=Serial", "unknown option 'cls'"),
        ("alt://?class=Serial", "missing device path"),
    ],
)
async def test_alt_bad_urls(url: str, message: str) -> None:
    with pytest.raises(trioserial.UnsupportedURLError, match=message):
        await trioserial.open_serial_port(url)


async def test_alt_missing_device_names_the_path() -> None:
    with pytest.raises(trioserial.PortNotFoundError, match="/dev/no-such-tty"):
        await trioserial.open_serial_port("alt:///dev/no-such-tty")


# hwgrep:// searches the system's serial ports (serial.tools.list_ports),
# where a pty never appears: these tests give open_hwgrep a port list that
# names ptys, and everything after the search (picking, skipping, opening)
# is real.


def fake_grep(*paths: str) -> object:
    def grep(regexp: str) -> Iterable[Sequence[str]]:
        return [
            (p, f"USB-Serial {i}", f"USB VID:PID=0403:6001 SER=A{i}") for i, p in enumerate(paths)
        ]

    return grep


def test_hwgrep_opens_the_nth_match(pty_path: str) -> None:
    master, slave = os.openpty()
    try:
        second = os.ttyname(slave)
        paths = sorted([pty_path, second])
        core = open_hwgrep("hwgrep://0403:6001&n=2", SerialSettings(), grep=fake_grep(*paths))  # type: ignore[arg-type]
        try:
            assert os.path.samefile(os.readlink(f"/proc/self/fd/{core.fileno()}"), paths[1])
            assert core.name == "hwgrep://0403:6001&n=2"
        finally:
            core.close()
    finally:
        os.close(master)
        os.close(slave)


def test_hwgrep_skip_busy_passes_over_a_locked_port(pty_path: str) -> None:
    master, slave = os.openpty()
    try:
        other = os.ttyname(slave)
        paths = sorted([pty_path, other])
        holder = open_hwgrep("hwgrep://USB", SerialSettings(), grep=fake_grep(paths[0]))  # type: ignore[arg-type]
        try:
            core = open_hwgrep("hwgrep://USB&skip_busy", SerialSettings(), grep=fake_grep(*paths))  # type: ignore[arg-type]
            assert os.path.samefile(os.readlink(f"/proc/self/fd/{core.fileno()}"), paths[1])
            core.close()
            with pytest.raises(trioserial.PortBusyError):
                open_hwgrep("hwgrep://USB", SerialSettings(), grep=fake_grep(*paths))  # type: ignore[arg-type]
        finally:
            holder.close()
    finally:
        os.close(master)
        os.close(slave)


async def test_hwgrep_without_a_match_says_what_it_searched() -> None:
    # The real search, on this machine's real port list.
    with pytest.raises(trioserial.PortNotFoundError, match="no-such-adapter-xyz"):
        await trioserial.open_serial_port("hwgrep://no-such-adapter-xyz")


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("hwgrep://(", "malformed regular expression"),
        ("hwgrep://USB&n=0", "malformed option n='0'"),
        ("hwgrep://USB&n=\u00b2", "malformed option n='\u00b2'"),  # str.isdigit() says yes
        ("hwgrep://USB&first", "unknown option 'first'"),
        ("hwgrep://", "missing regular expression"),
    ],
)
async def test_hwgrep_bad_urls(url: str, message: str) -> None:
    with pytest.raises(trioserial.UnsupportedURLError, match=message):
        await trioserial.open_serial_port(url)


# -------------------------------------------------------------------- spy


def test_hexdump_format() -> None:
    assert hexdump(b"hello") == [f"0000  {'68 65 6C 6C 6F':<48}  hello"]
    rows = hexdump(bytes(range(20)))
    assert rows[0].startswith("0000  00 01 02 03 04 05 06 07  08 09")
    assert rows[1].startswith("0010  10 11 12 13")


async def test_spy_traces_both_directions_and_control_to_a_file(tmp_path: Path) -> None:
    trace = tmp_path / "trace.txt"
    url = f"spy://loop://?file={trace}"
    async with await trioserial.open_serial_port(url) as port:
        assert port.transport == "loop"
        assert port.port == url
        await port.send_all(b"hello\xff")
        assert await port.receive_some() == b"hello\xff"
        port._core.set_dtr(False)
        port._core.apply_settings(port.settings.replace(baudrate=9600))
    lines = trace.read_text().splitlines()
    labels = [line.split()[1] for line in lines]
    assert labels == ["OPEN", "TX", "RX", "DTR", "SET", "CLOSE"]
    assert lines[1].endswith("0000  68 65 6C 6C 6F FF" + " " * 31 + "  hello.")
    assert "inactive" in lines[3]
    assert "9600 8N1" in lines[4]
    float(lines[0].split()[0])  # a timestamp first


async def test_spy_to_a_named_logger(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="my.trace")
    async with await trioserial.open_serial_port("spy://loop://?logger=my.trace&all") as port:
        await port.send_all(b"A")
        await port.receive_some()
        port._core.in_waiting()
    messages = [r.getMessage() for r in caplog.records if r.name == "my.trace"]
    assert any(" TX " in m and "41" in m for m in messages)
    assert any(" RX " in m for m in messages)
    assert any("in_waiting -> 0" in m for m in messages)  # "all" shows queries


async def test_spy_default_logger_raw_and_color(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="trioserial.spy")
    async with await trioserial.open_serial_port("spy://loop://?raw") as port:
        await port.send_all(b"raw!")
        await port.receive_some()
    messages = [r.getMessage() for r in caplog.records if r.name == "trioserial.spy"]
    assert messages == ["TX b'raw!'", "RX b'raw!'"]


async def test_spy_raw_color_file(tmp_path: Path) -> None:
    trace = tmp_path / "raw.bin"
    async with await trioserial.open_serial_port(f"spy://loop://?file={trace}&raw&color") as port:
        await port.send_all(b"\x00\xff")
        await port.receive_some()
    assert trace.read_bytes() == b"\x1b[31m\x00\xff\x1b[32m\x00\xff"


async def test_spy_on_a_device_path(tmp_path: Path, pty_path: str) -> None:
    trace = tmp_path / "t.txt"
    async with await trioserial.open_serial_port(f"spy://{pty_path}?file={trace}") as spied:
        assert spied.transport == "tty"
        await spied.send_all(b"to device")
    assert "to device" in trace.read_text()


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("spy://loop://?file=a&logger=b", "choose one"),
        ("spy://loop://?colour", "unknown option 'colour'"),
        ("spy://nope://", "unsupported URL scheme 'nope'"),
        ("spy://?raw", "missing port"),
    ],
)
async def test_spy_bad_urls(url: str, message: str) -> None:
    with pytest.raises(trioserial.UnsupportedURLError, match=message):
        await trioserial.open_serial_port(url)


async def test_a_trace_that_cannot_be_written_costs_the_port_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    # /dev/full: every write fails with ENOSPC, as on a full disk. The bytes
    # read must still reach the caller, a send must still count as sent, and
    # the trace stops with one warning.
    async with await trioserial.open_serial_port("spy://loop://?file=/dev/full") as port:
        await port.send_all(b"kept")
        assert await port.receive_some() == b"kept"
        await port.send_all(b"again")
        assert await port.receive_some() == b"again"
        assert port.statistics().bytes_sent == 9
    warnings = [r for r in caplog.records if r.name == "trioserial.spy"]
    assert len(warnings) == 1
    assert "stopped writing the trace to '/dev/full'" in warnings[0].getMessage()


async def test_spy_unwritable_trace_file(tmp_path: Path) -> None:
    with pytest.raises(trioserial.SerialPortError, match="cannot write the trace"):
        await trioserial.open_serial_port(f"spy://loop://?file={tmp_path}/no/such/dir/t")


async def test_spy_passes_the_whole_control_surface_through(tmp_path: Path) -> None:
    """spy:// over loop:// keeps break state and open-time DTR/RTS, and traces them."""
    trace = tmp_path / "trace.txt"
    url = f"spy://loop://?file={trace}"
    async with await trioserial.open_serial_port(url, dtr=False, rts=True) as port:
        assert (port.dtr, port.rts) == (False, True)
        assert (port.dsr, port.cts) == (False, True)  # loop-back wiring
        port.break_condition = True
        assert port.break_condition is True
        port.break_condition = False
    text = trace.read_text()
    assert "OPEN" in text
    assert "BRK" in text


def test_stable_path_prefers_the_by_id_link(tmp_path: Path) -> None:
    from trioserial._resolve import stable_path, udev_links

    master, slave = os.openpty()
    try:
        device = os.ttyname(slave)
        by_id = tmp_path / "by-id"
        by_id.mkdir()
        (by_id / "usb-FTDI_FT232R_A1B2C3-if00-port0").symlink_to(device)
        assert udev_links(by_id) == {device: str(by_id / "usb-FTDI_FT232R_A1B2C3-if00-port0")}
        assert stable_path(device, by_id) == str(by_id / "usb-FTDI_FT232R_A1B2C3-if00-port0")
        link = str(by_id / "usb-FTDI_FT232R_A1B2C3-if00-port0")
        assert stable_path(link, by_id) == link  # already stable
        assert stable_path("/dev/ttyNOTHERE", by_id) == "/dev/ttyNOTHERE"
        assert stable_path("loop://", by_id) == "loop://"
        assert udev_links(tmp_path / "absent") == {}  # udev makes the directory on demand
    finally:
        os.close(master)
        os.close(slave)
