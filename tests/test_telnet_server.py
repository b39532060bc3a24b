"""The sans-IO RFC 2217 server, tested synchronously against our own sans-IO client.

No event loop: bytes from one state machine are fed to the other, as a
socket would carry them.
"""

from __future__ import annotations

import random
import struct
from typing import Any

import pytest

from trioserial import ModemLines, SerialSettings
from trioserial import _telnet as t
from trioserial import _telnet_server as s
from trioserial import _telnet_wire as w
from trioserial._telnet_wire import Malformed, TelnetReader

IAC, SB, SE, DO, DONT, WILL, WONT = 255, 250, 240, 253, 254, 251, 252
COM = 44


def events(proto: s.RFC2217Server | t.RFC2217Client) -> list[object]:
    found: list[object] = []
    while (event := proto.next_event()) is not t.NEED_DATA:
        found.append(event)
    return found


def client_sub(command: int, value: bytes) -> bytes:
    return bytes((IAC, SB, COM, command)) + t.escape(value) + bytes((IAC, SE))


def connected() -> tuple[s.RFC2217Server, t.RFC2217Client]:
    """A server and a client that have finished negotiating, as over a socket."""
    server, client = s.RFC2217Server(), t.RFC2217Client()
    to_server, to_client = client.initiate(), server.initiate()
    for _ in range(10):
        if not to_server and not to_client:
            break
        server.receive_data(to_server)
        client.receive_data(to_client)
        to_server, to_client = client.data_to_send(), server.data_to_send()
    else:
        raise AssertionError("the negotiation did not settle")
    events(server)
    events(client)
    return server, client


def test_negotiation_with_our_client_settles_with_rfc2217_and_binary_both_ways() -> None:
    server, client = connected()
    assert client.negotiated
    assert server.rfc2217
    for name in ("we-BINARY", "they-BINARY", "we-RFC2217", "they-RFC2217"):
        assert client.is_active(name), name
    assert server.is_active("we-BINARY")
    assert server.is_active("they-BINARY")


def test_the_server_offers_echo_sga_and_binary() -> None:
    offer = s.RFC2217Server().initiate()
    for command, option in ((WILL, 1), (WILL, 3), (WILL, 0), (DO, 0)):
        assert bytes((IAC, command, option)) in offer


def test_unknown_options_are_refused_and_options_off_are_answered_once() -> None:
    server = s.RFC2217Server()
    server.receive_data(bytes((IAC, WILL, 99, IAC, DO, 98, IAC, WONT, 97)))
    assert server.data_to_send() == bytes((IAC, DONT, 99, IAC, WONT, 98))
    server.receive_data(bytes((IAC, WILL, 99, IAC, DO, 98)) * 1000)  # asked again and again
    assert server.data_to_send() == b""  # refused once is enough: no answers piling up
    server.receive_data(bytes((IAC, DO, 3)))  # yes to our SGA offer: no answer owed
    assert server.data_to_send() == b""
    server.receive_data(bytes((IAC, DONT, 3)))
    assert server.data_to_send() == bytes((IAC, WONT, 3))


def test_a_settings_request_round_trips_to_an_acknowledgement() -> None:
    server, client = connected()
    server.receive_data(client.set_baudrate(9600))
    (request,) = events(server)
    assert request == s.SetSetting(w.SET_BAUDRATE, 9600)
    assert isinstance(request, s.SetSetting)
    assert request.changes() == {"baudrate": 9600}
    client.receive_data(server.answer_setting(request, SerialSettings(baudrate=9600)))
    assert events(client) == [t.Acknowledged("baudrate", struct.pack("!I", 9600))]


def test_a_rejected_setting_is_answered_with_the_old_value() -> None:
    server, client = connected()
    server.receive_data(client.set_baudrate(921600))
    (request,) = events(server)
    assert isinstance(request, s.SetSetting)
    client.receive_data(server.answer_setting(request, SerialSettings(baudrate=115200)))
    assert events(client) == [
        t.Rejected("baudrate", struct.pack("!I", 921600), struct.pack("!I", 115200))
    ]


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        (SerialSettings(bytesize=7, parity="E", stopbits=2), (7, 3, 2)),
        (SerialSettings(bytesize=5, parity="S", stopbits=1.5), (5, 5, 3)),
    ],
)
def test_line_settings_round_trip(settings: SerialSettings, expected: tuple[int, int, int]) -> None:
    server, client = connected()
    server.receive_data(client.set_line(settings))
    requests = events(server)
    assert [r.value for r in requests if isinstance(r, s.SetSetting)][1:] == list(expected)
    changes: dict[str, Any] = {}
    for request in requests:
        assert isinstance(request, s.SetSetting)
        changes.update(request.changes())
    assert SerialSettings(**changes) == settings
    for request in requests:
        assert isinstance(request, s.SetSetting)
        client.receive_data(server.answer_setting(request, settings))
    assert all(isinstance(e, t.Acknowledged) for e in events(client))
    assert client.pending() == 0


def test_a_query_changes_nothing_and_undefined_values_are_errors() -> None:
    assert s.SetSetting(w.SET_BAUDRATE, 0).changes() == {}
    with pytest.raises(ValueError, match="data size"):
        s.SetSetting(w.SET_DATASIZE, 9).changes()
    with pytest.raises(ValueError, match="parity"):
        s.SetSetting(w.SET_PARITY, 6).changes()
    with pytest.raises(ValueError, match="stop size"):
        s.SetSetting(w.SET_STOPSIZE, 4).changes()


def test_a_baud_rate_of_the_wrong_length_is_malformed() -> None:
    server = s.RFC2217Server()
    server.receive_data(client_sub(w.SET_BAUDRATE, b"\x01\x02"))
    assert events(server) == [Malformed("SET-BAUDRATE with 2 bytes")]


def test_every_control_value_is_answered_with_the_state_in_force() -> None:
    state = s.ControlState(SerialSettings(rtscts=True), dtr=False, rts=True, break_condition=True)
    server = s.RFC2217Server()
    answers = {}
    for value in range(20):
        wire = server.answer_control(s.SetControl(value), state)
        assert wire[:4] == bytes((IAC, SB, COM, 105))
        answers[value] = wire[4]
    assert {answers[v] for v in (0, 1, 2, 3, 17, 18, 19)} == {3}  # hardware flow control
    assert {answers[v] for v in (4, 5, 6)} == {5}  # break on
    assert {answers[v] for v in (7, 8, 9)} == {9}  # DTR off
    assert {answers[v] for v in (10, 11, 12)} == {11}  # RTS on
    assert {answers[v] for v in (13, 14, 15, 16)} == {16}  # inbound: hardware


def test_control_requests_say_what_to_change() -> None:
    assert s.SetControl(2).flow == (True, False)
    assert s.SetControl(3).flow == (False, True)
    assert s.SetControl(8).dtr is True
    assert s.SetControl(12).rts is False
    assert s.SetControl(5).break_ is True
    assert s.SetControl(7).dtr is None  # a query
    assert s.SetControl(0).flow is None


def test_an_answered_dtr_request_is_an_acknowledgement_for_our_client() -> None:
    server, client = connected()
    server.receive_data(client.set_control(t.Control.DTR_OFF))
    (request,) = events(server)
    assert isinstance(request, s.SetControl)
    state = s.ControlState(SerialSettings(), dtr=False, rts=True, break_condition=False)
    client.receive_data(server.answer_control(request, state))
    assert events(client) == [t.Acknowledged("control", bytes((t.Control.DTR_OFF,)))]


def test_purge_is_an_event_and_its_answer_echoes_the_value() -> None:
    server, client = connected()
    server.receive_data(client.purge(t.Purge.BOTH))
    (request,) = events(server)
    assert request == s.PurgeRequest(3)
    assert isinstance(request, s.PurgeRequest)
    assert request.receive
    assert request.transmit
    client.receive_data(server.answer_purge(request))
    assert events(client) == [t.Acknowledged("purge", b"\x03")]


def test_modem_notifications_carry_deltas_and_follow_the_mask() -> None:
    server, client = connected()
    both = ModemLines(cts=True, dsr=True, ri=False, cd=False, dtr=True, rts=True)
    client.receive_data(server.notify_modem(s.modem_bits(both), force=True))
    assert events(client) == [t.ModemState(0x30)]
    assert server.notify_modem(0x30) == b""  # nothing changed: nothing sent
    client.receive_data(server.notify_modem(0x10))  # DSR fell: DSR delta (0x02)
    assert events(client) == [t.ModemState(0x12)]
    server.receive_data(client_sub(w.SET_MODEMSTATE_MASK, b"\x10"))  # only CTS
    assert server.data_to_send() == client_sub(111, b"\x10")
    # RFC 2217: on any change, send the state ANDed with the mask, unless that is 0.
    client.receive_data(server.notify_modem(0x30))  # DSR rose: CTS (on) is what shows
    assert events(client) == [t.ModemState(0x10)]
    assert server.notify_modem(0x20) == b""  # CTS fell: the masked value is 0
    client.receive_data(server.notify_modem(0x30))
    assert events(client) == [t.ModemState(0x10)]


def test_ring_reports_its_trailing_edge() -> None:
    server = s.RFC2217Server()
    server.notify_modem(0x00, force=True)
    assert server.notify_modem(0x40)[4] == 0x40  # ring on: no delta yet
    assert server.notify_modem(0x00)[4] == 0x04  # ring ended: the trailing-edge bit


def test_line_state_is_sent_only_under_a_mask_unless_asked() -> None:
    server = s.RFC2217Server()
    assert server.notify_line(0x60) == b""  # the initial mask is 0
    assert server.notify_line(0x60, force=True) == client_sub(106, b"\x00")
    server.receive_data(client_sub(w.SET_LINESTATE_MASK, b"\xff"))
    assert server.data_to_send() == client_sub(110, b"\xff")
    assert server.notify_line(0x00) == b""  # changed, but nothing set
    assert server.notify_line(0x60) == client_sub(106, b"\x60")


def test_modem_and_line_state_requests_are_events() -> None:
    server = s.RFC2217Server()
    server.receive_data(client_sub(w.NOTIFY_MODEMSTATE, b"") + client_sub(6, b""))
    assert events(server) == [s.ModemStateRequest(), s.LineStateRequest()]


def test_flow_control_suspend_and_resume_from_the_client() -> None:
    server = s.RFC2217Server()
    server.receive_data(client_sub(w.FLOWCONTROL_SUSPEND, b""))
    assert server.flow_suspended
    server.receive_data(client_sub(w.FLOWCONTROL_RESUME, b""))
    assert not server.flow_suspended
    assert events(server) == [t.FlowControl(True), t.FlowControl(False)]


def test_all_byte_values_survive_any_chunking_both_ways() -> None:
    rng = random.Random(2217)
    original = bytes(range(256)) * 4 + bytes(rng.choice((0xFF, 0x00, 0xF0)) for _ in range(3000))
    server, client = connected()
    for sender, receiver in ((client, server), (server, client)):
        wire = t.escape(original) if sender is client else server.send_data(original)
        i = 0
        while i < len(wire):
            n = rng.randint(1, 9)
            receiver.receive_data(wire[i : i + n])
            i += n
        got = b"".join(e.data for e in events(receiver) if isinstance(e, t.Data))
        assert got == original


def test_the_end_of_the_connection_is_one_event() -> None:
    server = s.RFC2217Server()
    server.receive_data(b"")
    server.receive_data(b"")
    assert events(server) == [t.Closed()]


# ------------------------------------------------------------- malformed input


@pytest.mark.parametrize(
    ("wire", "reason"),
    [
        (bytes((IAC, 5)), "IAC followed by 5"),
        (bytes((IAC, SE)), "IAC followed by 240"),
        (bytes((IAC, SB, COM, 1, IAC, DO, 1)), "command 253 inside a sub-negotiation"),
        (bytes((IAC, SB, COM, 1, IAC, SB)), "command 250 inside a sub-negotiation"),
        (bytes((IAC, SB, COM)) + b"x" * 1000, "sub-negotiation too long"),
    ],
)
def test_malformed_telnet_ends_the_stream(wire: bytes, reason: str) -> None:
    server = s.RFC2217Server()
    server.receive_data(b"ok" + wire)
    server.receive_data(b"ignored" + bytes((IAC, WILL, 99)))
    found = events(server)
    assert found[0] == t.Data(b"ok")
    assert len(found) == 2
    assert isinstance(found[1], Malformed)
    assert reason in found[1].reason
    assert server.data_to_send() == b""  # nothing parsed after the break


def test_malformed_input_split_byte_by_byte_is_still_found() -> None:
    reader = TelnetReader(max_subnegotiation=8)
    wire = bytes((IAC, SB, COM)) + b"\xff\xff" * 8
    tokens = [token for byte in wire for token in reader.feed(bytes((byte,)))]
    assert tokens == [Malformed("sub-negotiation too long")]
    assert reader.broken


def test_garbage_costs_bounded_memory() -> None:
    rng = random.Random(7)
    for _ in range(50):
        server = s.RFC2217Server()
        for _ in range(20):
            server.receive_data(bytes(rng.randrange(256) for _ in range(500)))
        events(server)
        assert len(server._reader._sub or b"") <= t.MAX_SUBNEGOTIATION


def test_text_mode_drops_the_nul_after_cr_even_across_chunks() -> None:
    # A telnet program that did not agree to BINARY sends Enter as CR NUL.
    server = s.RFC2217Server()
    server.receive_data(bytes((IAC, DONT, 0, IAC, WONT, 0)))
    server.receive_data(b"ls\r\x00pwd\r")
    server.receive_data(b"\x00\r\n\x00")
    data = b"".join(e.data for e in events(server) if isinstance(e, t.Data))
    assert data == b"ls\rpwd\r\r\n\x00"


def test_binary_mode_passes_cr_nul_through() -> None:
    server, _ = connected()
    server.receive_data(b"\r\x00")
    assert events(server) == [t.Data(b"\r\x00")]
