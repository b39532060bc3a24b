"""The sans-IO XMODEM/YMODEM machines, tested synchronously: bytes in, bytes and events out.

``machine_pump.pump`` joins a Sender and a Receiver on a fake clock; fault
hooks on each direction corrupt, drop, duplicate or delay what crosses, as a
noisy line would. No event loop anywhere.
"""

from __future__ import annotations

import random
import time

import pytest
from machine_pump import Fault, corrupt_every, pump

from trioserial import _transfer_base as b
from trioserial import _xymodem as x

SOH, STX, EOT, ACK, NAK, CAN = 1, 2, 4, 6, 0x15, 0x18


def xmodem(block_size: int = 1024, crc: bool = True, **kw: object) -> tuple[x.Sender, x.Receiver]:
    return x.Sender(batch=False, block_size=block_size), x.Receiver(batch=False, crc=crc, **kw)  # type: ignore[arg-type]


def ymodem() -> tuple[x.Sender, x.Receiver]:
    return x.Sender(batch=True), x.Receiver(batch=True)


SIZES = [0, 1, 127, 128, 129, 1023, 1024, 1025, 4096, 5000]


def test_crc16_is_crc16_xmodem() -> None:
    assert x.crc16(b"123456789") == 0x31C3


def test_block_layout() -> None:
    block = x.build_block(257, b"hi", size=128, crc=True)
    assert block[:3] == bytes((SOH, 1, 254))
    assert block[3:5] == b"hi"
    assert block[5:131] == b"\x1a" * 126
    assert block[131:] == x.crc16(block[3:131]).to_bytes(2, "big")
    block = x.build_block(3, b"z" * 1024, size=1024, crc=False)
    assert block[0] == STX
    assert len(block) == 3 + 1024 + 1
    assert block[-1] == (ord("z") * 1024) & 0xFF


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize(("block_size", "crc"), [(128, False), (128, True), (1024, True)])
def test_xmodem_round_trip_pads_and_size_trims(size: int, block_size: int, crc: bool) -> None:
    data = random.Random(size).randbytes(size)
    s, r = xmodem(block_size, crc)
    got = pump(s, r, [("f", data)]).files[None]
    assert got[:size] == data
    assert set(got[size:]) <= {0x1A}
    assert len(got) % 128 == 0
    s, r = xmodem(block_size, crc, size=size)
    result = pump(s, r, [("f", data)])
    assert result.files[None] == data
    assert result.progress_r[-1] == b.TransferProgress("", size, size)
    assert result.progress_s[-1] == b.TransferProgress("f", size, size)


def test_xmodem_checksum_mode_follows_the_receivers_nak() -> None:
    s, r = xmodem(128, crc=False)
    result = pump(s, r, [("f", b"abc")])
    assert result.wire_r[0] == NAK
    assert not s.crc
    assert len(result.wire_s) >= 132
    assert result.wire_s[:3] == bytes((SOH, 1, 254))


def test_xmodem_receiver_falls_back_to_checksum_after_three_c() -> None:
    _s, r = xmodem(128)
    r.start(0.0)
    assert r.data_to_send() == b"C"
    for t in (3.0, 6.0):
        r.tick(t)
        assert r.data_to_send() == b"C"
    r.tick(9.0)
    assert r.data_to_send() == bytes((NAK,))


def test_data_ending_in_0x1a_survives_with_size_and_in_ymodem() -> None:
    data = b"payload" + b"\x1a" * 200
    s, r = xmodem(128, size=len(data))
    assert pump(s, r, [("f", data)]).files[None] == data
    s, r = ymodem()
    assert pump(*ymodem(), [("sub.bin", data)]).files["sub.bin"] == data


def test_ymodem_batch_of_every_size() -> None:
    files = [(f"f{size}", random.Random(size).randbytes(size)) for size in SIZES]
    result = pump(*ymodem(), files)
    assert result.files == dict(files)
    ends = [p for p in result.progress_r if p.done == p.total]
    assert [p.name for p in ends if p.done or p.name == "f0"][-1] == "f5000"
    assert result.progress_s[-1] == b.TransferProgress("f5000", 5000, 5000)


def test_ymodem_header_carries_size_mtime_mode_and_parses_back() -> None:
    info = b.FileInfo("a.bin", 1234, 0o14353035012, 0o100644)
    payload = x.encode_header(info)
    assert payload == b"a.bin\x001234 14353035012 100644"
    assert x.parse_header(payload.ljust(128, b"\x00")) == info
    assert x.parse_header(b"\x00" * 128) is None
    assert x.parse_header(b"b\x00garbage") == b.FileInfo("b", None)
    # The fields are positional: without a size, neither mtime nor mode can go.
    assert x.encode_header(b.FileInfo("c", None, 0o14353035012, 0o100644)) == b"c\x00"
    assert x.parse_header(b"c".ljust(128, b"\x00")) == b.FileInfo("c", None)


def drop_every(n: int) -> Fault:
    count = 0

    def fault(data: bytes) -> bytes:
        nonlocal count
        count += 1
        return b"" if count % n == 0 else data

    return fault


def test_corruption_both_ways_is_retried_and_the_data_arrives_intact() -> None:
    data = random.Random(5).randbytes(20_000)
    result = pump(*ymodem(), [("a", data)], s2r=corrupt_every(3001), r2s=corrupt_every(7))
    assert result.files["a"] == data
    s, r = xmodem(128, size=len(data))
    assert pump(s, r, [("a", data)], s2r=corrupt_every(997)).files[None] == data


def test_dropped_blocks_and_dropped_acks_are_recovered() -> None:
    data = random.Random(6).randbytes(30_000)
    # Dropped ACKs make the sender wait for the receiver's NAK, then repeat a
    # block the receiver already has: it must be ACKed again and not written twice.
    result = pump(*ymodem(), [("a", data)], s2r=drop_every(5), r2s=drop_every(4))
    assert result.files["a"] == data
    s, r = xmodem(1024, size=len(data))
    assert pump(s, r, [("a", data)], s2r=drop_every(3), r2s=drop_every(3)).files[None] == data


def test_a_duplicated_block_is_acknowledged_and_written_once() -> None:
    def twice(data: bytes) -> bytes:
        return data * 2 if data[:1] in (b"\x01", b"\x02") else data

    data = random.Random(7).randbytes(3000)
    s, r = xmodem(128, size=len(data))
    result = pump(s, r, [("a", data)], s2r=twice)
    assert result.files[None] == data


def test_a_block_split_into_single_bytes_and_delayed_is_received() -> None:
    s, r = xmodem(1024)
    s.start(0.0)
    r.start(0.0)
    s.receive_data(r.data_to_send(), 0.0)
    assert isinstance(s.next_event(), b.NextFile)
    s.start_file(b.FileInfo("a", 5))
    assert isinstance(s.next_event(), b.ReadData)
    s.supply(b"hello")
    block = s.data_to_send()
    for i, byte in enumerate(block):
        r.receive_data(bytes((byte,)), 0.5 * i / len(block))
    assert r.next_event() == b.Payload(b"hello" + b"\x1a" * 123)
    assert r.data_to_send() == bytes((ACK,))


def test_a_partial_block_is_dropped_and_naked_after_a_quiet_second() -> None:
    _s, r = xmodem(128)
    r.start(0.0)
    r.data_to_send()
    r.receive_data(x.build_block(1, b"x", size=128, crc=True)[:50], 0.1)
    assert r.deadline == pytest.approx(1.1)
    r.tick(1.1)
    # Still the start phase (no block yet): the answer is the start character again.
    assert r.data_to_send() == b"C"
    r.receive_data(x.build_block(1, b"x", size=128, crc=True), 1.2)
    assert isinstance(r.next_event(), b.Payload)


def test_banner_junk_before_the_first_block_is_skipped() -> None:
    _s, r = xmodem(128, size=3)
    r.start(0.0)
    r.data_to_send()
    banner = b"U-Boot 2023.01\r\n\x01\x02\x04\x18 junk ## Ready\r\n"
    r.receive_data(banner + x.build_block(1, b"abc", size=128, crc=True), 0.1)
    assert r.next_event() == b.Payload(b"abc")
    out = r.data_to_send()
    # The stray EOT in the banner is answered with the start character, never a NAK.
    assert out.endswith(bytes((ACK,)))
    assert NAK not in out


def test_a_c_inside_banner_text_does_not_start_the_sender() -> None:
    s = x.Sender(batch=True)
    s.start(0.0)
    s.receive_data(b"Ctrl-C to abort\r\n", 0.1)
    assert s.next_event() is b.NEED_DATA
    assert not s.data_to_send()
    s.receive_data(b"## Ready for binary (ymodem) download\r\nC", 0.2)
    assert isinstance(s.next_event(), b.NextFile)


def test_garbled_start_characters_are_ignored_until_a_real_one() -> None:
    s = x.Sender(batch=False)
    s.start(0.0)
    s.receive_data(b"\xc3", 0.1)  # a "C" with a flipped bit
    assert s.next_event() is b.NEED_DATA
    s.receive_data(b"C", 3.0)
    assert isinstance(s.next_event(), b.NextFile)


def test_eot_is_naked_first_then_acked() -> None:
    s, r = xmodem(128)
    result = pump(s, r, [("a", b"x")])
    assert result.wire_r.endswith(bytes((NAK, ACK)))
    assert result.wire_s.endswith(bytes((EOT, EOT)))


def test_a_stray_eot_in_the_middle_is_not_the_end() -> None:
    _s, r = xmodem(128, size=256)
    r.start(0.0)
    r.data_to_send()
    r.receive_data(x.build_block(1, b"a" * 128, size=128, crc=True), 0.1)
    r.receive_data(bytes((EOT,)), 0.2)  # noise
    assert r.data_to_send() == bytes((ACK, NAK))
    r.receive_data(x.build_block(2, b"b" * 128, size=128, crc=True), 0.3)
    r.receive_data(bytes((EOT,)), 0.4)
    r.receive_data(bytes((EOT,)), 0.5)
    events = drain(r)
    assert b.FileEnd() in events
    assert b.Done() in events
    assert b"".join(e.data for e in events if isinstance(e, b.Payload)) == b"a" * 128 + b"b" * 128


def drain(machine: x.Sender | x.Receiver) -> list[b.Event]:
    found = []
    while (e := machine.next_event()) is not b.NEED_DATA:
        assert not isinstance(e, b._NeedData)
        found.append(e)
    return found


def started(side: str) -> x.Sender | x.Receiver:
    """A machine past its start: the sender waiting for the header's ACK, the receiver in a file."""
    if side == "sender":
        s = x.Sender(batch=True)
        s.start(0.0)
        s.receive_data(b"C", 0.0)
        drain(s)
        s.start_file(b.FileInfo("f", 1))
        s.data_to_send()
        return s
    r = x.Receiver(batch=True)
    r.start(0.0)
    r.receive_data(x.build_block(0, b"f\x001", size=128, crc=True, pad=0), 0.0)
    r.data_to_send()
    drain(r)
    return r


@pytest.mark.parametrize("side", ["sender", "receiver"])
def test_can_can_from_the_peer_cancels_and_one_can_does_not(side: str) -> None:
    machine = started(side)
    machine.receive_data(bytes((CAN,)) + b"x", 0.1)
    machine.receive_data(bytes((CAN,)), 0.2)
    with pytest.raises(b.TransferCancelledError, match="cancelled the transfer"):
        machine.receive_data(bytes((CAN,)), 0.3)
    assert machine.finished
    assert machine.data_to_send() == b""  # the peer cancelled: nothing to tell it


@pytest.mark.parametrize("side", ["sender", "receiver"])
def test_cans_before_the_start_are_an_old_cancels_tail(side: str) -> None:
    machine: x.Sender | x.Receiver = (
        x.Sender(batch=True) if side == "sender" else x.Receiver(batch=True)
    )
    machine.start(0.0)
    machine.data_to_send()
    machine.receive_data(b.CANCEL_SEQUENCE, 0.1)
    assert not machine.finished
    if isinstance(machine, x.Sender):
        machine.receive_data(b"C", 0.2)
        assert isinstance(machine.next_event(), b.NextFile)


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        (b"../x", r"\.\."),
        (b"a/../../x", r"\.\."),
        (b"/etc/passwd", "absolute"),
        (b"", "empty"),
        (b"a\x00b", "NUL"),
        (b"dir/", "directory"),
        (b".", "directory"),
        (b"x" * 300, "longer"),
        (b"x" * 251, "longer than 250 bytes"),  # x.part would not fit in NAME_MAX
    ],
)
def test_safe_name_rejects_names_that_leave_the_directory(raw: bytes, why: str) -> None:
    with pytest.raises(b.UnsafeFileNameError, match=why) as info:
        b.safe_name(raw)
    assert info.value.name == raw


def test_safe_name_keeps_the_base_name() -> None:
    assert b.safe_name(b"sub/dir/x.bin") == "x.bin"
    assert b.safe_name(b"..x") == "..x"
    assert b.safe_name(b"\xff.bin") == "\udcff.bin"
    assert b.safe_name(b"x" * 250) == "x" * 250


@pytest.mark.parametrize("name", [b"../x", b"/etc/passwd", b"a/../b", b"sub/"])
def test_a_hostile_header_cancels_the_transfer(name: bytes) -> None:
    r = x.Receiver(batch=True)
    r.start(0.0)
    r.data_to_send()
    header = x.build_block(0, name + b"\x005", size=128, crc=True, pad=0)
    with pytest.raises(b.UnsafeFileNameError):
        r.receive_data(header, 0.1)
    assert r.data_to_send() == b.CANCEL_SEQUENCE
    assert not [e for e in drain(r) if isinstance(e, b.FileStart)]


def test_an_impossible_size_cancels_and_a_huge_one_is_held_to_its_word() -> None:
    r = x.Receiver(batch=True)
    r.start(0.0)
    r.data_to_send()
    with pytest.raises(b.TransferError, match="impossible size"):
        r.receive_data(x.build_block(0, b"a\x00" + b"9" * 40, size=128, crc=True, pad=0), 0.1)
    assert r.data_to_send() == b.CANCEL_SEQUENCE
    # A size that fits but is a lie: the receiver writes what came, then says so.
    s = x.Sender(batch=True)
    r = x.Receiver(batch=True)

    def lie(data: bytes) -> bytes:
        if data[:3] == bytes((SOH, 0, 255)) and data[3:4] == b"a":
            payload = x.encode_header(b.FileInfo("a", 10**15))
            return x.build_block(0, payload, size=128, crc=True, pad=0)
        return data

    with pytest.raises(b.TransferError, match="after 128 of its 1000000000000000 bytes"):
        pump(s, r, [("a", b"abc")], s2r=lie)


def test_a_size_of_zero_with_data_after_it_is_an_unknown_size() -> None:
    # lrzsz's sb sends what stat() says: 0 for /proc and sysfs files, which have data.
    s, r = ymodem()

    def zero(data: bytes) -> bytes:
        if data[:3] == bytes((SOH, 0, 255)) and data[3:4] == b"a":
            payload = x.encode_header(b.FileInfo("a", 0))
            return x.build_block(0, payload, size=128, crc=True, pad=0)
        return data

    got = pump(s, r, [("a", b"abc"), ("empty", b"")], s2r=zero).files
    assert got["a"] == b"abc".ljust(128, b"\x1a")
    assert got["empty"] == b""


def test_junk_costs_bounded_memory_and_time() -> None:
    r = x.Receiver(batch=False)
    r.start(0.0)
    rng = random.Random(9)
    # Worst case for the scanner: many candidate block starts with a valid number/complement.
    evil = bytes((SOH, 1, 254)) * 20_000 + rng.randbytes(200_000).replace(b"\x18", b"")
    began = time.process_time()
    for i in range(0, len(evil), 4096):
        r.receive_data(evil[i : i + 4096], 0.1)
    spent = time.process_time() - began
    assert len(r._buffer) <= 2 * 1030
    assert len(r._seen) <= 64
    assert spent < 5, spent  # a guard against quadratic behaviour, far above the normal


def test_a_silent_receiver_times_out_naming_what_was_seen() -> None:
    s = x.Sender(batch=False, timeout=5)
    s.start(0.0)
    s.receive_data(b"U-Boot banner, then nothing useful", 1.0)
    assert s.deadline == 5.0
    with pytest.raises(b.TransferTimeoutError, match="timed out after 5 s") as info:
        s.tick(5.0)
    assert info.value.seen.endswith(b"nothing useful")
    assert s.data_to_send() == b.CANCEL_SEQUENCE


def test_a_silent_sender_times_out_after_start_characters() -> None:
    r = x.Receiver(batch=True, timeout=9)
    r.start(0.0)
    sent = r.data_to_send()
    for now in (3.0, 6.0):
        assert r.deadline == now
        r.tick(now)
        sent += r.data_to_send()
    assert r.deadline == 9.0
    with pytest.raises(b.TransferTimeoutError, match="first block"):
        r.tick(9.0)
    assert sent == b"CCC"


def test_too_many_naks_on_one_block() -> None:
    s = x.Sender(batch=False)

    def reject(data: bytes) -> bytes:
        return bytes((NAK,)) if data == bytes((ACK,)) else data

    with pytest.raises(b.TransferRetriesError, match="block 1") as info:
        pump(s, x.Receiver(batch=False), [("a", b"x")], r2s=reject)
    assert info.value.block == 1


def test_abort_returns_the_cancel_sequence_and_stops() -> None:
    s = x.Sender(batch=True)
    s.start(0.0)
    assert s.abort() == bytes([CAN] * 8 + [8] * 8)
    assert s.finished
    assert s.deadline is None


def test_the_sender_repeats_a_block_after_half_the_timeout_of_silence() -> None:
    s = x.Sender(batch=False, timeout=10)
    s.start(0.0)
    s.receive_data(b"C", 0.0)
    drain(s)
    s.start_file(b.FileInfo("f", 300))
    drain(s)
    s.supply(b"a" * 128)
    first = s.data_to_send()
    s.receive_data(bytes((ACK,)), 1.0)  # block 1 acknowledged
    drain(s)
    s.supply(b"b" * 128)
    second = s.data_to_send()
    assert s.deadline == 6.0  # half the timeout after the last answer, not sooner
    s.tick(6.0)
    assert s.data_to_send() == second != first
    assert s.deadline == 11.0  # the silence limit, the next repeat would be at 11.0 too
    with pytest.raises(b.TransferTimeoutError):
        s.tick(11.0)


def test_the_batch_end_is_not_waited_for_long() -> None:
    s = x.Sender(batch=True, timeout=9)
    s.start(0.0)
    s.receive_data(b"C", 0.0)
    drain(s)
    s.start_file(None)
    null = s.data_to_send()
    assert null[:3] == bytes((SOH, 0, 255))
    s.tick(3.0)  # one repeat after the retry interval
    assert s.data_to_send() == null
    s.tick(6.0)
    assert s.finished
    assert b.Done() in drain(s)
    s = x.Sender(batch=True)
    s.start(0.0)
    s.receive_data(b"C", 0.0)
    drain(s)
    s.start_file(None)
    s.connection_lost()  # rb exited with its last ACK: everything was acknowledged
    assert s.finished


def test_a_hangup_mid_transfer_is_an_error() -> None:
    r = x.Receiver(batch=True)
    r.start(0.0)
    with pytest.raises(b.TransferError, match="hung up"):
        r.connection_lost()
