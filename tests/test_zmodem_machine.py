"""The sans-IO ZMODEM machines and frames, tested synchronously: bytes in, bytes and events out.

``machine_pump.pump`` joins a Sender and a Receiver on a fake clock; fault
hooks on each direction corrupt, drop or cut what crosses, as a noisy line
would. No event loop anywhere.
"""

from __future__ import annotations

import binascii
import random

import pytest
from machine_pump import Fault, corrupt_every, pump

from trioserial import _transfer_base as b
from trioserial import _zmodem as z
from trioserial import _zmodem_receiver as zr
from trioserial import _zmodem_wire as w


def machines(**kw: object) -> tuple[z.Sender, zr.Receiver]:
    return z.Sender(**kw), zr.Receiver()  # type: ignore[arg-type]


SIZES = [0, 1, 1023, 1024, 1025, 32768, 32769, 100_000]


# ------------------------------------------------------------------ frames


def test_hex_header_is_lrzsz_s_zrinit() -> None:
    # What lrzsz's rz sends first (CANFDX|CANOVIO|CANFC32 = 0x23), byte for byte.
    assert w.hex_header(w.ZRINIT, w.flags(0x23)) == b"**\x18B0100000023be50\r\x8a\x11"
    assert w.hex_header(w.ZFIN, w.flags()).endswith(b"\r\x8a")  # no XON after ZFIN


def test_escape_covers_what_a_line_may_eat() -> None:
    for byte in (0x18, 0x10, 0x11, 0x13, 0x90, 0x91, 0x93):
        assert w.escape(bytes((byte,))) == bytes((0x18, byte ^ 0x40))
    assert w.escape(b"x@\rA\r") == b"x@\x18MA\r"  # CR only after "@"
    assert w.escape(b"\r") == b"\x18M"  # first in a piece: what came before is unknown
    assert w.escape(b"\x01\x7f\xff") == b"\x01\x7f\xff"
    assert w.escape(b"\x01\x81", control=True) == b"\x18A\x18\xc1"
    every = bytes(range(256)) * 2
    assert not set(w.escape(every)) & {0x10, 0x11, 0x13, 0x90, 0x91, 0x93}


@pytest.mark.parametrize("crc32", [False, True])
@pytest.mark.parametrize("control", [False, True])
def test_frames_parse_back_in_any_pieces(crc32: bool, control: bool) -> None:
    data = bytes(range(256)) * 4 + b"@\r\x18\x18\x18\x18\x18"
    wire = (
        b"junk**"
        + w.binary_header(w.ZDATA, w.position(70000), crc32=crc32, control=control)
        + w.subpacket(data, w.ZCRCG, crc32=crc32, control=control)
        + w.subpacket(b"", w.ZCRCE, crc32=crc32, control=control)
        + w.hex_header(w.ZEOF, w.position(70000))
    )
    for size in (1, 3, 7, len(wire)):
        reader = w.Reader()
        items: list[w.Item] = []
        for at in range(0, len(wire), size):
            items += reader.feed(wire[at : at + size])
        assert items == [
            w.Header(w.ZDATA, w.position(70000), crc32),
            w.Subpacket(data, w.ZCRCG),
            w.Subpacket(b"", w.ZCRCE),
            w.Header(w.ZEOF, w.position(70000)),
        ]
        assert reader.seen == b"junk"


def test_raw_xon_xoff_inside_frames_are_ignored() -> None:
    wire = w.binary_header(w.ZDATA, w.position(0), crc32=True) + w.subpacket(
        b"abc", w.ZCRCW, crc32=True
    )
    noisy = b"\x11".join(wire[i : i + 2] for i in range(0, len(wire), 2))
    items = w.Reader().feed(noisy)
    assert items[-1] == w.Subpacket(b"abc", w.ZCRCW)


def test_corrupt_header_and_subpacket_are_reported_and_skipped() -> None:
    header = bytearray(w.binary_header(w.ZDATA, w.position(5), crc32=False))
    header[4] ^= 0x01
    sub = bytearray(w.subpacket(b"hello", w.ZCRCG, crc32=False))
    sub[1] ^= 0x20
    good = w.hex_header(w.ZACK, w.position(9))
    items = w.Reader().feed(bytes(header) + good)
    assert items == [w.HeaderError(), w.Header(w.ZACK, w.position(9))]
    reader = w.Reader()
    reader.feed(w.binary_header(w.ZDATA, w.position(0), crc32=False))
    assert reader.feed(bytes(sub) + b"more data" + good) == [
        w.DataError("a CRC error"),
        w.Header(w.ZACK, w.position(9)),
    ]


def test_five_cans_abort_inside_and_outside_frames() -> None:
    assert w.Reader().feed(b"text\x18\x18\x18\x18\x18\x08\x08") == [w.Cancelled()]
    reader = w.Reader()
    reader.feed(w.binary_header(w.ZDATA, w.position(0), crc32=True) + b"partial")
    assert reader.feed(b"\x18\x18") == []
    assert reader.feed(b"\x18\x18\x18\x08") == [w.Cancelled()]


def test_reader_memory_is_bounded() -> None:
    reader = w.Reader()
    reader.feed(w.binary_header(w.ZDATA, w.position(0), crc32=True))
    items = []
    for _ in range(20):
        items += reader.feed(b"x" * 1000)
    assert items == [w.DataError(f"a data subpacket longer than {w.MAX_SUBPACKET} bytes")]
    for _ in range(100):
        reader.feed(random.Random(1).randbytes(1000).replace(b"\x18", b""))
    assert len(reader.seen) <= w.MAX_SEEN
    assert len(reader._buf) <= 4


def test_file_info_round_trip_and_hostile_names() -> None:
    info = b.FileInfo("a.bin", 1234, 0o14353035012, 0o100644)
    assert z.encode_file_info(info) == b"a.bin\x001234 14353035012 100644\x00"
    assert z.parse_file_info(z.encode_file_info(info)) == info
    for bad in (b"../x\x001", b"/etc/passwd\x001", b"\x001", b"a/../../b\x00"):
        with pytest.raises(b.UnsafeFileNameError):
            z.parse_file_info(bad)
    assert z.parse_file_info(b"sub/x\x005").name == "x"


# --------------------------------------------------------------- transfers


@pytest.mark.parametrize("size", SIZES)
def test_round_trip_of_every_size(size: int) -> None:
    data = random.Random(size).randbytes(size)
    result = pump(*machines(), [("f.bin", data)])
    assert result.files == {"f.bin": data}
    assert result.progress_s[-1] == b.TransferProgress("f.bin", size, size)
    assert result.progress_r[-1] == b.TransferProgress("f.bin", size, size)
    assert result.wire_s.endswith(b"OO")
    assert result.now == 0.0  # no timer was needed


def test_a_session_of_several_files_with_crc32_headers() -> None:
    files = [(f"f{size}", random.Random(size).randbytes(size)) for size in SIZES]
    s, r = machines()
    result = pump(s, r, files)
    assert result.files == dict(files)
    assert s.crc32
    assert b"*\x18C" in result.wire_s
    assert b"*\x18A" not in result.wire_s


def test_data_full_of_zdle_xon_xoff_never_shows_them_raw() -> None:
    data = bytes([0x18, 0x11, 0x13, 0x91, 0x93, 0x10, 0x90, 0x40, 0x0D, 0x2A]) * 5000
    result = pump(*machines(), [("esc.bin", data)])
    assert result.files == {"esc.bin": data}
    body = result.wire_s.split(b"\x18i")  # ZCRCG ends
    assert all(not set(part) & {0x11, 0x13, 0x91, 0x93} for part in body[1:-1])


def test_sender_keeps_at_most_in_flight_windows_unacknowledged() -> None:
    s, _r = machines(window=4096)
    s.start(0.0)
    s.receive_data(w.hex_header(w.ZRINIT, w.flags(zr.RECEIVER_FLAGS)), 0.0)
    assert s.next_event() == b.NextFile()
    s.start_file(b.FileInfo("f", 100_000))
    s.receive_data(w.hex_header(w.ZRPOS, w.position(0)), 0.0)
    asks = []
    while (e := s.next_event()) is not b.NEED_DATA:
        if isinstance(e, b.ReadData):
            asks.append(e.size)
            s.supply(b"x" * e.size)
    assert asks == [4096] * z.IN_FLIGHT
    assert s.data_to_send().count(b"\x18j") == z.IN_FLIGHT  # ZCRCQ: each answered by a ZACK
    s.receive_data(w.hex_header(w.ZACK, w.position(4096)), 0.1)
    assert s.next_event() == b.TransferProgress("f", 4096, 100_000)
    assert s.next_event() == b.ReadData(4096)


def test_receiver_buffer_size_means_zcrcw_windows_one_at_a_time() -> None:
    s, _ = machines()
    s.start(0.0)
    s.receive_data(w.hex_header(w.ZRINIT, bytes((0x00, 0x08, 0, zr.RECEIVER_FLAGS))), 0.0)
    assert s.window == 2048
    data = random.Random(2).randbytes(10_000)
    result = pump(z.Sender(window=2048), zr.Receiver(), [("f", data)])
    assert result.files == {"f": data}


def corrupt_randomly(probability: float, seed: int) -> Fault:
    """Flip a bit in about *probability* of the bytes, at random places (unlike
    :func:`corrupt_every`, whose fixed period can hit the first subpacket of
    every resend alike)."""
    rng = random.Random(seed)

    def fault(data: bytes) -> bytes:
        out = bytearray(data)
        at = int(rng.expovariate(probability))
        while at < len(out):
            out[at] ^= 1 << rng.randrange(8)
            at += 1 + int(rng.expovariate(probability))
        return bytes(out)

    return fault


def drop_some(probability: float, seed: int = 2) -> Fault:
    rng = random.Random(seed)

    def fault(data: bytes) -> bytes:
        if rng.random() < probability:
            cut = rng.randrange(len(data) + 1)
            return data[:cut] + data[cut + rng.randrange(1, 200) :]
        return data

    return fault


def test_corruption_recovers_through_zrpos_without_restarting_the_file() -> None:
    data = random.Random(3).randbytes(300_000)
    result = pump(*machines(), [("f.bin", data)], s2r=corrupt_every(20_000))
    assert result.files == {"f.bin": data}
    assert result.seeks[0] == 0
    assert len(result.seeks) > 5
    assert all(0 < pos < len(data) for pos in result.seeks[1:])  # never back to 0
    assert result.wire_r.count(b"**\x18B09") > 5  # ZRPOS


def test_drops_both_ways_recover() -> None:
    data = random.Random(4).randbytes(200_000)
    files = [("a", data), ("b", data[:5000]), ("c", b"")]
    result = pump(*machines(), files, s2r=drop_some(0.05), r2s=drop_some(0.2, seed=5))
    assert result.files == dict(files)


def test_corrupted_acknowledgements_and_headers_recover() -> None:
    data = random.Random(6).randbytes(150_000)
    result = pump(
        *machines(), [("f", data)], s2r=corrupt_randomly(1 / 7_000, 7), r2s=corrupt_every(97, 8)
    )
    assert result.files == {"f": data}


def test_resume_from_the_length_held_and_skip_a_complete_file() -> None:
    data = random.Random(9).randbytes(70_000)
    have = {"part": data[:40_000], "whole": data}
    s, r = machines(resume=True)
    result = pump(s, r, [("part", data), ("whole", data)], have=have)
    assert result.files == {"part": data}
    assert result.skipped == ["whole"]
    assert result.seeks == [40_000]
    assert result.progress_s[0] == b.TransferProgress("part", 40_000, 70_000)
    assert len(result.wire_s) < 35_000  # only the missing part crossed
    offer = w.Reader().feed(result.wire_s[result.wire_s.index(b"*\x18C") :])[0]
    assert isinstance(offer, w.Header)
    assert offer.f0 == w.ZCRESUM


def test_receiver_cancels_on_an_unsafe_name() -> None:
    s, r = machines()
    with pytest.raises(b.UnsafeFileNameError):
        pump(s, r, [("../evil", b"x")])
    assert r.finished


def test_a_cancel_from_the_peer_is_an_error_without_answer() -> None:
    r = zr.Receiver()
    r.start(0.0)
    r.data_to_send()
    with pytest.raises(b.TransferCancelledError, match="sender cancelled"):
        r.receive_data(b.CANCEL_SEQUENCE, 0.1)
    assert r.data_to_send() == b""
    s = z.Sender()
    s.start(0.0)
    with pytest.raises(b.TransferCancelledError, match="receiver cancelled"):
        s.receive_data(b"\x18" * 5, 0.1)


def test_receiver_times_out_with_what_it_saw() -> None:
    r = zr.Receiver(timeout=6.0)
    r.start(0.0)
    assert r.data_to_send().startswith(b"**\x18B01")
    r.receive_data(b"bash: sz: command not found\r\n", 0.5)
    r.tick(2.0)
    assert r.data_to_send().startswith(b"**\x18B01")  # ZRINIT again
    with pytest.raises(b.TransferTimeoutError, match="ZFILE") as info:
        r.tick(10.0)
    assert info.value.seen == b"bash: sz: command not found"
    assert r.data_to_send() == b.CANCEL_SEQUENCE


def test_sender_times_out_when_nobody_answers() -> None:
    s = z.Sender(timeout=3.0, retry=1.0)
    s.start(0.0)
    for t in (1.0, 2.0):
        s.tick(t)
        assert s.data_to_send().startswith(b"**\x18B00")  # ZRQINIT again
    with pytest.raises(b.TransferTimeoutError, match="ZRINIT"):
        s.tick(3.5)


def test_receiver_refuses_remote_commands() -> None:
    r = zr.Receiver()
    r.start(0.0)
    with pytest.raises(b.TransferError, match="ZCOMMAND"):
        r.receive_data(w.binary_header(w.ZCOMMAND, w.flags(), crc32=False), 0.1)


def test_sender_refuses_a_position_beyond_the_file() -> None:
    s = z.Sender()
    s.start(0.0)
    s.receive_data(w.hex_header(w.ZRINIT, w.flags(zr.RECEIVER_FLAGS)), 0.0)
    s.next_event()
    s.start_file(b.FileInfo("f", 10))
    with pytest.raises(b.TransferError, match="byte 11 of 'f'"):
        s.receive_data(w.hex_header(w.ZRPOS, w.position(11)), 0.0)


def test_work_per_call_is_bounded_by_its_input() -> None:
    r = zr.Receiver()
    r.start(0.0)
    r.receive_data(w.binary_header(w.ZFILE, w.flags(), crc32=True), 0.0)
    r.receive_data(w.subpacket(b"f\x00", w.ZCRCW, crc32=True), 0.0)
    offer = r.next_event()
    assert isinstance(offer, b.FileOffer)
    r.accept(0)
    r.receive_data(w.binary_header(w.ZDATA, w.position(0), crc32=True), 0.0)
    noise = random.Random(10).randbytes(1 << 20)
    r.receive_data(noise, 0.1)  # one call, one MB of noise: one ZRPOS, nothing kept
    assert len(r._reader._buf) < 16
    assert binascii.crc32(b"") == 0


def test_a_restart_mid_stream_ends_the_open_frame_first() -> None:
    s = z.Sender(window=4096)
    s.start(0.0)
    s.receive_data(w.hex_header(w.ZRINIT, w.flags(zr.RECEIVER_FLAGS)), 0.0)
    s.next_event()
    s.start_file(b.FileInfo("f", 100_000))
    s.receive_data(w.hex_header(w.ZRPOS, w.position(0)), 0.0)
    while (e := s.next_event()) is not b.NEED_DATA:
        if isinstance(e, b.ReadData):
            s.supply(b"x" * e.size)
    s.data_to_send()
    s.receive_data(w.hex_header(w.ZRPOS, w.position(2048)), 0.1)
    out = s.data_to_send()
    restart = w.binary_header(w.ZDATA, w.position(2048), crc32=True)
    assert out == w.subpacket(b"", w.ZCRCE, crc32=True) + restart
    # A receiver still inside the frame (after a ZCRCG) reads the new header as a header.
    reader = w.Reader()
    reader.feed(w.binary_header(w.ZDATA, w.position(0), crc32=True))
    reader.feed(w.subpacket(b"y" * 10, w.ZCRCG, crc32=True))
    assert reader.in_data
    assert reader.feed(out)[-1] == w.Header(w.ZDATA, w.position(2048), True)


@pytest.mark.parametrize("crc32", [False, True])
def test_control_escaping_leaves_no_raw_control_byte_but_zdle(crc32: bool) -> None:
    # A receiver that asked for ESCCTL (rz -e) drops raw control bytes: the CRC
    # after the data must be escaped as the data is.
    for n in range(64):
        wire = w.binary_header(w.ZDATA, w.position(n), crc32=crc32, control=True) + w.subpacket(
            bytes([n]) * n, w.ZCRCW, crc32=crc32, control=True
        )
        assert {c for c in wire if c & 0x60 == 0} <= {0x18}, n


# ------------------------------------------- a sender that breaks the rules


def offered(size: int) -> zr.Receiver:
    """A receiver that accepted ``f`` of *size* bytes from 0 and asked for it."""
    r = zr.Receiver()
    r.start(0.0)
    r.receive_data(w.binary_header(w.ZFILE, w.flags(w.ZCBIN), crc32=True), 0.0)
    r.receive_data(w.subpacket(f"f\x00{size} 0 100644\x00".encode(), w.ZCRCW, crc32=True), 0.0)
    assert isinstance(r.next_event(), b.FileOffer)
    r.accept(0)
    r.data_to_send()
    return r


def data_then_eof(data: bytes) -> bytes:
    return (
        w.binary_header(w.ZDATA, w.position(0), crc32=True)
        + w.subpacket(data, w.ZCRCW, crc32=True)
        + w.binary_header(w.ZEOF, w.position(len(data)), crc32=True)
    )


def test_an_end_short_of_the_announced_size_is_an_error() -> None:
    # ZFILE says 1000 bytes, ZEOF comes at 500: not a complete file (YMODEM alike).
    r = offered(1000)
    with pytest.raises(b.TransferError, match="after 500 of its 1000 bytes"):
        r.receive_data(data_then_eof(b"A" * 500), 0.1)
    assert r.data_to_send() == b.CANCEL_SEQUENCE  # the sender is told
    while (event := r.next_event()) is not b.NEED_DATA:
        assert not isinstance(event, b.FileEnd)  # nothing says "complete"


def test_data_past_the_announced_size_is_refused() -> None:
    r = offered(1000)
    r.receive_data(w.binary_header(w.ZDATA, w.position(0), crc32=True), 0.1)
    r.receive_data(w.subpacket(b"A" * 1000, w.ZCRCG, crc32=True), 0.1)
    with pytest.raises(b.TransferError, match="more than the 1000 bytes it announced"):
        r.receive_data(w.subpacket(b"B", w.ZCRCG, crc32=True), 0.2)
    assert r.data_to_send().endswith(b.CANCEL_SEQUENCE)


@pytest.mark.parametrize("size", ["3", "", "0"])
def test_the_announced_size_an_unknown_size_or_0_end_the_file(size: str) -> None:
    # No size, or 0 (what sz announces for a /proc file): what arrives before ZEOF is the file.
    r = zr.Receiver()
    r.start(0.0)
    r.receive_data(w.binary_header(w.ZFILE, w.flags(), crc32=True), 0.0)
    r.receive_data(w.subpacket(f"f\x00{size}".encode(), w.ZCRCW, crc32=True), 0.0)
    r.next_event()
    r.accept(0)
    r.receive_data(data_then_eof(b"abc"), 0.1)
    events = []
    while (event := r.next_event()) is not b.NEED_DATA:
        events.append(event)
    assert b.Payload(b"abc") in events
    assert events[-2:] == [b.TransferProgress("f", 3, 3), b.FileEnd()]


def repeat(r: zr.Receiver, data: bytes, every: float, times: list[float]) -> None:
    """Feed *data* to *r* every *every* seconds (ticking too) until it raises."""
    for i in range(1, 100):
        times.append(i * every)
        r.receive_data(data, i * every)
        r.tick(i * every)


def test_a_peer_repeating_zrqinit_for_ever_runs_out_of_retries() -> None:
    # Each ZRQINIT is answered, but counts as a retry, not as progress.
    r = zr.Receiver(timeout=2.0)
    r.start(0.0)
    r.data_to_send()
    r.receive_data(w.hex_header(w.ZRQINIT, w.flags()), 0.01)
    assert r.data_to_send().startswith(b"**\x18B01")  # answered: ZRINIT
    times: list[float] = []
    with pytest.raises(b.TransferRetriesError, match="ZRINIT"):
        repeat(r, w.hex_header(w.ZRQINIT, w.flags()), 0.1, times)
    assert len(times) <= z.MAX_RETRIES


def test_a_peer_repeating_zrqinit_slowly_times_out() -> None:
    r = zr.Receiver(timeout=2.0, retry=10.0)
    r.start(0.0)
    times: list[float] = []
    with pytest.raises(b.TransferTimeoutError):
        repeat(r, w.hex_header(w.ZRQINIT, w.flags()), 0.5, times)
    assert times[-1] <= 2.0


def test_a_zfile_that_never_arrives_intact_runs_out_of_retries() -> None:
    r = zr.Receiver()
    r.start(0.0)
    bad = bytearray(w.subpacket(b"f\x0010 0 100644\x00", w.ZCRCW, crc32=True))
    bad[3] ^= 1
    times: list[float] = []
    with pytest.raises(b.TransferRetriesError, match="ZNAK"):
        repeat(r, w.binary_header(w.ZFILE, w.flags(), crc32=True) + bad, 0.1, times)
    assert len(times) <= z.MAX_RETRIES + 1
