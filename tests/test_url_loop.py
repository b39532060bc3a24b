"""loop://: an in-memory echo port on a real fd, with backpressure and modem emulation."""

from __future__ import annotations

import logging

import pytest
import trio
import trio.testing

import trioserial
from trioserial._core import PortCore
from trioserial._loop import CHUNK


def core(port: trioserial.AsyncSerial) -> PortCore:
    # The control surface's primitives; AsyncSerial's own methods sit on top.
    return port._core


async def test_what_is_sent_is_received_one_chunk_per_send() -> None:
    async with await trioserial.open_serial_port("loop://") as port:
        assert port.transport == "loop"
        assert port.port == "loop://"
        await port.send_all(b"hello")
        await port.send_all(b"\x00\xff")
        assert await port.receive_some() == b"hello"
        assert await port.receive_some() == b"\x00\xff"


async def test_receive_smaller_than_a_chunk_keeps_the_tail() -> None:
    async with await trioserial.open_serial_port("loop://") as port:
        await port.send_all(b"abcdefgh")
        await port.send_all(b"ij")
        assert core(port).in_waiting() == 10
        assert await port.receive_some(3) == b"abc"
        assert core(port).in_waiting() == 7
        assert await port.receive_some(3) == b"def"
        assert await port.receive_some(100) == b"gh"
        assert await port.receive_some(100) == b"ij"


async def test_large_sends_are_chunked_and_arrive_whole_and_in_order() -> None:
    data = bytes(range(256)) * 2000  # 512 KB, more than the kernel buffer holds
    async with await trioserial.open_serial_port("loop://") as port:
        received = bytearray()

        async def reader() -> None:
            while len(received) < len(data):
                chunk = await port.receive_some()
                assert len(chunk) <= CHUNK
                received.extend(chunk)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await port.send_all(data)
        assert received == data


async def test_a_full_buffer_blocks_the_sender_until_the_reader_makes_room() -> None:
    data = b"x" * 1_000_000
    async with await trioserial.open_serial_port("loop://") as port:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(port.send_all, data)
            await trio.testing.wait_all_tasks_blocked()
            stats = port.statistics()
            assert stats.tasks_waiting_send == 1
            assert 0 < stats.bytes_sent < len(data)
            got = 0
            while got < len(data):
                got += len(await port.receive_some())
        assert port.statistics().bytes_sent == len(data)


async def test_a_cancelled_receive_consumed_nothing() -> None:
    async with await trioserial.open_serial_port("loop://") as port:
        await port.send_all(b"abcdef")
        assert await port.receive_some(2) == b"ab"  # the rest waits in the core
        with trio.CancelScope() as scope:
            scope.cancel()
            await port.receive_some()
        assert scope.cancelled_caught
        assert await port.receive_some() == b"cdef"


async def test_modem_lines_loop_back_like_pyserial() -> None:
    async with await trioserial.open_serial_port("loop://") as port:
        lines = core(port).modem_lines()
        assert (lines.dtr, lines.dsr, lines.rts, lines.cts) == (True, True, True, True)
        assert (lines.ri, lines.cd) == (False, True)  # pyserial's loop:// says CD is on
        core(port).set_dtr(False)
        assert core(port).modem_lines().dsr is False
        assert core(port).modem_lines().cts is True
        core(port).set_rts(False)
        assert core(port).modem_lines().cts is False
        core(port).set_break(True)
        core(port).set_break(False)


async def test_settings_are_accepted_and_kept() -> None:
    async with await trioserial.open_serial_port("loop://", baudrate=9600) as port:
        assert port.settings.baudrate == 9600
        new = port.settings.replace(baudrate=57600, parity="E", rtscts=True)
        core(port).apply_settings(new)
        assert port.settings == new


async def test_reset_input_buffer_discards_everything_unread() -> None:
    async with await trioserial.open_serial_port("loop://") as port:
        await port.send_all(b"old1")
        await port.send_all(b"old2")
        assert await port.receive_some(1) == b"o"
        core(port).reset_input_buffer()
        core(port).reset_output_buffer()
        assert core(port).in_waiting() == 0
        assert core(port).out_waiting() == 0
        await port.send_all(b"new")
        assert await port.receive_some() == b"new"


@pytest.mark.usefixtures("no_fd_leaks")
async def test_close_wakes_a_waiting_receiver_and_releases_the_fd() -> None:
    port = await trioserial.open_serial_port("loop://")
    async with trio.open_nursery() as nursery:

        async def receiver() -> None:
            with pytest.raises(trio.ClosedResourceError):
                await port.receive_some()

        nursery.start_soon(receiver)
        await trio.testing.wait_all_tasks_blocked()
        await port.aclose()
    with pytest.raises(trio.ClosedResourceError):
        await port.send_all(b"x")
    with pytest.raises(OSError, match="closed"):
        core(port).modem_lines()


async def test_loop_url_takes_no_path_or_options() -> None:
    with pytest.raises(trioserial.UnsupportedURLError, match="'loop://x'"):
        await trioserial.open_serial_port("loop://x")
    with pytest.raises(trioserial.UnsupportedURLError, match="unknown option 'fast'"):
        await trioserial.open_serial_port("loop://?fast")


@pytest.mark.usefixtures("no_fd_leaks")
async def test_a_forgotten_port_is_closed_by_the_garbage_collector() -> None:
    import gc

    port = await trioserial.open_serial_port("loop://")
    del port
    gc.collect()


async def test_pyserial_logging_option(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="trioserial.loop")
    async with await trioserial.open_serial_port("loop://?logging=info") as port:
        core(port).set_dtr(False)
    assert any("DTR off -> DSR" in r.getMessage() for r in caplog.records)
    with pytest.raises(trioserial.UnsupportedURLError, match="malformed logging level 'loud'"):
        await trioserial.open_serial_port("loop://?logging=loud")
