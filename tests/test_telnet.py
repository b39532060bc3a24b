"""The sans-IO RFC 2217 client protocol, tested synchronously: bytes in, events out."""

from __future__ import annotations

import random
import struct

import pytest

from trioserial import Parity, SerialSettings, StopBits
from trioserial import _telnet as t

IAC, SB, SE, DO, DONT, WILL, WONT = 255, 250, 240, 253, 254, 251, 252
COM = 44


def events(proto: t.RFC2217Client) -> list[t.Event]:
    found: list[t.Event] = []
    while True:
        event = proto.next_event()
        if event is t.NEED_DATA:
            return found
        assert not isinstance(event, t.NeedData)
        found.append(event)


def data_of(proto: t.RFC2217Client) -> bytes:
    return b"".join(e.data for e in events(proto) if isinstance(e, t.Data))


def server_sub(command: int, value: bytes) -> bytes:
    return bytes((IAC, SB, COM, command)) + t.escape(value) + bytes((IAC, SE))


def negotiated() -> t.RFC2217Client:
    proto = t.RFC2217Client()
    proto.initiate()
    proto.receive_data(bytes((IAC, DO, COM, IAC, WILL, COM)))
    events(proto)
    proto.data_to_send()
    return proto


def test_plain_data_passes_through() -> None:
    proto = t.RFC2217Client()
    proto.receive_data(b"hello\x00world")
    assert events(proto) == [t.Data(b"hello\x00world")]


def test_escaped_iac_is_one_data_byte_even_split_across_chunks() -> None:
    proto = t.RFC2217Client()
    proto.receive_data(b"a\xff")
    proto.receive_data(b"\xffb")
    assert data_of(proto) == b"a\xffb"


def test_escape_doubles_every_iac() -> None:
    assert t.escape(b"\xff\x00\xff\xff") == b"\xff\xff\x00\xff\xff\xff\xff"


def test_any_data_survives_escaping_and_any_chunking() -> None:
    rng = random.Random(2217)
    original = bytes(rng.choice((0xFF, 0x00, 0x41, 0xFE, 0xF0)) for _ in range(5000))
    wire = t.escape(original)
    proto = t.RFC2217Client()
    i = 0
    while i < len(wire):
        n = rng.randint(1, 7)
        proto.receive_data(wire[i : i + n])
        i += n
    assert data_of(proto) == original


def test_initiate_asks_for_com_port_option_both_ways() -> None:
    sent = t.RFC2217Client().initiate()
    assert bytes((IAC, WILL, COM)) in sent
    assert bytes((IAC, DO, COM)) in sent


def test_negotiation_completes_when_the_server_says_do_com_port() -> None:
    proto = t.RFC2217Client()
    proto.initiate()
    assert not proto.negotiated
    proto.receive_data(bytes((IAC, DO, COM)))
    assert t.OptionChanged("we-RFC2217", True) in events(proto)
    assert proto.negotiated
    assert not proto.refused
    assert proto.data_to_send() == b""  # it was our request: no answer owed


def test_server_refusing_com_port_option_is_reported() -> None:
    proto = t.RFC2217Client()
    proto.initiate()
    proto.receive_data(bytes((IAC, DONT, COM)))
    assert proto.refused
    assert not proto.negotiated


def test_binary_offered_by_the_server_is_accepted_and_answered() -> None:
    proto = t.RFC2217Client()
    proto.receive_data(bytes((IAC, DO, 0, IAC, WILL, 0)))
    assert proto.data_to_send() == bytes((IAC, WILL, 0, IAC, DO, 0))
    assert proto.is_active("we-BINARY")
    assert proto.is_active("they-BINARY")


def test_unknown_options_are_refused() -> None:
    proto = t.RFC2217Client()
    proto.receive_data(bytes((IAC, WILL, 99, IAC, DO, 98, IAC, WONT, 97)))
    assert proto.data_to_send() == bytes((IAC, DONT, 99, IAC, WONT, 98))


def test_data_around_commands_keeps_its_order() -> None:
    proto = t.RFC2217Client()
    proto.receive_data(b"ab" + bytes((IAC, 241)) + b"cd" + server_sub(107, b"\x30") + b"ef")
    assert events(proto) == [
        t.Data(b"ab"),
        t.TelnetCommand(241),
        t.Data(b"cd"),
        t.ModemState(0x30),
        t.Data(b"ef"),
    ]


def test_set_baudrate_bytes_are_rfc2217_and_escaped() -> None:
    proto = negotiated()
    assert proto.set_baudrate(9600) == bytes((IAC, SB, COM, 1, 0, 0, 0x25, 0x80, IAC, SE))
    # 255 baud has a 0xFF byte in its value: doubled inside the sub-negotiation.
    assert proto.set_baudrate(255) == bytes((IAC, SB, COM, 1, 0, 0, 0, IAC, IAC, IAC, SE))


@pytest.mark.parametrize(
    ("settings", "values"),
    [
        (SerialSettings(), (115200, 8, 1, 1)),
        (SerialSettings(bytesize=7, parity="E", stopbits=2), (115200, 7, 3, 2)),
        (SerialSettings(parity=Parity.ODD, stopbits=StopBits.ONE_POINT_FIVE), (115200, 8, 2, 3)),
        (SerialSettings(parity="M"), (115200, 8, 4, 1)),
        (SerialSettings(parity="S"), (115200, 8, 5, 1)),
    ],
)
def test_line_settings_encode_as_rfc2217_values(
    settings: SerialSettings, values: tuple[int, int, int, int]
) -> None:
    proto = negotiated()
    baud, size, parity, stop = values
    assert proto.set_line(settings) == (
        bytes((IAC, SB, COM, 1)) + t.escape(struct.pack("!I", baud)) + bytes((IAC, SE))
        + bytes((IAC, SB, COM, 2, size, IAC, SE))
        + bytes((IAC, SB, COM, 3, parity, IAC, SE))
        + bytes((IAC, SB, COM, 4, stop, IAC, SE))
    )  # fmt: skip
    assert proto.pending() == 4


def test_acknowledgement_matches_the_request() -> None:
    proto = negotiated()
    proto.set_baudrate(9600)
    assert proto.pending("baudrate") == 1
    proto.receive_data(server_sub(101, struct.pack("!I", 9600)))
    assert events(proto) == [t.Acknowledged("baudrate", struct.pack("!I", 9600))]
    assert proto.pending() == 0


def test_an_answer_with_another_value_is_a_rejection() -> None:
    proto = negotiated()
    proto.set_baudrate(921600)
    proto.receive_data(server_sub(101, struct.pack("!I", 115200)))
    assert events(proto) == [
        t.Rejected("baudrate", struct.pack("!I", 921600), struct.pack("!I", 115200))
    ]
    assert proto.pending() == 0


def test_control_answers_may_come_in_any_order() -> None:
    proto = negotiated()
    proto.set_control(t.Control.DTR_ON)
    proto.set_control(t.Control.RTS_OFF)
    proto.receive_data(server_sub(105, bytes((t.Control.RTS_OFF,))))
    proto.receive_data(server_sub(105, bytes((t.Control.DTR_ON,))))
    assert [type(e) for e in events(proto)] == [t.Acknowledged, t.Acknowledged]
    assert proto.pending("control") == 0


def test_ign_set_control_does_not_track_control_requests() -> None:
    proto = t.RFC2217Client(check_control=False)
    assert proto.set_control(t.Control.BREAK_ON) == bytes((IAC, SB, COM, 5, 5, IAC, SE))
    assert proto.pending() == 0
    proto.receive_data(server_sub(105, b"\x01"))  # sredird's wrong answer: ignored
    assert events(proto) == []


def test_purge_request_and_acknowledgement() -> None:
    proto = negotiated()
    assert proto.purge(t.Purge.BOTH) == bytes((IAC, SB, COM, 12, 3, IAC, SE))
    proto.receive_data(server_sub(112, b"\x03"))
    assert events(proto) == [t.Acknowledged("purge", b"\x03")]


def test_unsolicited_answers_are_ignored() -> None:
    proto = negotiated()
    proto.receive_data(server_sub(101, b"\x00\x00\x25\x80"))
    assert events(proto) == []


def test_modem_and_line_state_notifications_split_anywhere() -> None:
    proto = negotiated()
    wire = server_sub(107, b"\xff") + server_sub(106, b"\x60")
    for i in range(len(wire)):
        proto.receive_data(wire[i : i + 1])
    assert events(proto) == [t.ModemState(0xFF), t.LineState(0x60)]
    assert proto.modem_state == 0xFF
    assert proto.line_state == 0x60


def test_flow_control_suspend_and_resume() -> None:
    proto = negotiated()
    proto.receive_data(server_sub(108, b""))
    assert proto.flow_suspended
    proto.receive_data(server_sub(109, b""))
    assert not proto.flow_suspended
    assert events(proto) == [t.FlowControl(True), t.FlowControl(False)]


def test_poll_modem_request() -> None:
    assert negotiated().request_modem_state() == bytes((IAC, SB, COM, 7, IAC, SE))


def test_foreign_subnegotiations_are_ignored() -> None:
    proto = negotiated()
    proto.receive_data(bytes((IAC, SB, 24, 1, IAC, SE)) + b"x")
    assert events(proto) == [t.Data(b"x")]


def test_end_of_stream_is_one_closed_event() -> None:
    proto = t.RFC2217Client()
    proto.receive_data(b"")
    proto.receive_data(b"")
    assert events(proto) == [t.Closed()]
    assert proto.closed


def test_flow_control_both_ways_cannot_be_expressed() -> None:
    with pytest.raises(ValueError, match="rtscts and xonxoff"):
        negotiated().set_flow_control(SerialSettings(rtscts=True, xonxoff=True))


def test_an_endless_subnegotiation_is_cut_not_buffered() -> None:
    proto = negotiated()
    proto.receive_data(bytes((IAC, SB, COM, 107)) + b"\x01" * 100_000 + bytes((IAC, SE)) + b"x")
    assert events(proto) == [t.ModemState(1), t.Data(b"x")]
    assert len(proto._reader._sub or b"") == 0


def test_unanswered_requests_are_bounded() -> None:
    proto = negotiated()
    for _ in range(1000):
        proto.set_baudrate(9600)
    assert proto.pending("baudrate") == t.MAX_PENDING


def test_a_do_for_an_option_we_only_ask_the_server_for_is_refused() -> None:
    # ECHO is one-sided: we ask the server to echo (DO ECHO), never offer it.
    # The server asking *us* to echo must get a WONT, not silence (RFC 854).
    proto = t.RFC2217Client()
    proto.initiate()
    proto.receive_data(bytes((IAC, DO, 1)))
    assert proto.data_to_send() == bytes((IAC, WONT, 1))
    assert not proto.is_active("they-ECHO")
    proto.receive_data(bytes((IAC, DONT, 1)))  # its answer to our WONT: nothing more
    assert proto.data_to_send() == b""


def test_an_echoing_peer_does_not_start_a_negotiation_loop() -> None:
    # A peer that sends back whatever it gets: every answer we give comes back,
    # and must end in silence after a round or two.
    proto = t.RFC2217Client()
    wire = proto.initiate()
    for _ in range(10):
        if not wire:
            break
        proto.receive_data(wire)
        wire = proto.data_to_send()
    assert wire == b""


def test_commands_data_and_subnegotiations_fed_byte_by_byte() -> None:
    proto = t.RFC2217Client()
    wire = (
        b"a"
        + bytes((IAC, IAC))  # an escaped 0xFF data byte
        + bytes((IAC, WILL, 0))  # the server offers BINARY
        + b"\r\x00\r\n"  # binary mode: CR NUL and CR LF are data, unchanged
        + server_sub(107, b"\xff\xf0")  # IAC and SE values inside a sub-negotiation
        + bytes((IAC, 241))  # NOP
        + b"\xf0b"
        + bytes((IAC, DO, 99))
    )
    for i in range(len(wire)):
        proto.receive_data(wire[i : i + 1])
    found = events(proto)
    assert b"".join(e.data for e in found if isinstance(e, t.Data)) == b"a\xff\r\x00\r\n\xf0b"
    assert [e for e in found if not isinstance(e, t.Data)] == [
        t.OptionChanged("they-BINARY", True),
        t.ModemState(0xFF),
        t.TelnetCommand(241),
    ]
    assert proto.data_to_send() == bytes((IAC, DO, 0, IAC, WONT, 99))


def test_an_endless_subnegotiation_of_escaped_iacs_is_cut_too() -> None:
    proto = negotiated()
    proto.receive_data(bytes((IAC, SB, COM, 107)) + b"\xff\xff" * 100_000)
    assert len(proto._reader._sub or b"") <= t.MAX_SUBNEGOTIATION
    proto.receive_data(bytes((IAC, SE)) + b"x")
    assert events(proto) == [t.ModemState(0xFF), t.Data(b"x")]


def test_a_repeated_request_for_an_unknown_option_is_refused_once() -> None:
    # RFC 1143: answer a change of state; "still no" is none. A server that
    # repeats WILL/DO without end must not make our answers pile up.
    proto = negotiated()
    proto.receive_data(bytes((IAC, WILL, 99, IAC, DO, 98)) * 1000)
    assert proto.data_to_send() == bytes((IAC, DONT, 99, IAC, WONT, 98))
    proto.receive_data(bytes((IAC, WILL, 99, IAC, DO, 98)))
    assert proto.data_to_send() == b""


def test_negotiation_without_data_is_counted() -> None:
    proto = negotiated()
    nops = bytes((IAC, 241)) * 50
    start = proto.bytes_without_data  # the negotiation itself
    proto.receive_data(nops)
    proto.receive_data(server_sub(107, b"\x30"))
    assert proto.bytes_without_data == start + len(nops) + 7
    proto.receive_data(nops + b"x" + nops[:10])  # a data byte: the count starts again
    assert proto.bytes_without_data == 0
    proto.receive_data(nops)
    proto.receive_data(b"plain")
    assert proto.bytes_without_data == 0
    proto.receive_data(nops)
    proto.set_baudrate(9600)
    proto.receive_data(server_sub(101, struct.pack("!I", 9600)))  # an answer we asked for
    assert proto.bytes_without_data == 0
    proto.receive_data(server_sub(101, struct.pack("!I", 9600)))  # one we did not
    assert proto.bytes_without_data == 10


def test_what_the_server_refuses_as_malformed_the_client_reads_leniently() -> None:
    # The server reads its clients strictly (tests/test_telnet_server.py); the
    # client must talk to the access servers that exist, so the same bytes are
    # read on: a stray command is reported, a stray SE ignored, a negotiation
    # inside a sub-negotiation answered, and the sub-negotiation still ends.
    proto = negotiated()
    proto.receive_data(bytes((IAC, 5)) + b"a" + bytes((IAC, SE)) + b"b")
    assert events(proto) == [t.TelnetCommand(5), t.Data(b"ab")]
    proto.receive_data(bytes((IAC, SB, COM, 107, IAC, DO, 99, 0x30, IAC, SE)) + b"c")
    assert events(proto) == [t.ModemState(0x30), t.Data(b"c")]
    assert proto.data_to_send() == bytes((IAC, WONT, 99))


def test_the_lenient_reader_cuts_a_long_subnegotiation_split_byte_by_byte() -> None:
    from trioserial._telnet_wire import Subnegotiation, TelnetReader

    reader = TelnetReader(max_subnegotiation=8, strict=False)
    wire = bytes((IAC, SB, COM)) + b"\xff\xff" * 8 + b"x" * 8 + bytes((IAC, SE)) + b"y"
    tokens = [token for byte in wire for token in reader.feed(bytes((byte,)))]
    assert tokens == [Subnegotiation(bytes((COM,)) + b"\xff" * 7), t.Data(b"y")]
    assert not reader.broken


def test_an_option_name_must_say_whose_it_is() -> None:
    from trioserial._telnet_wire import Option, State

    assert Option.named("they-BINARY", State.INACTIVE).ack_yes == WILL
    with pytest.raises(ValueError, match="'us-BINARY'"):
        Option.named("us-BINARY", State.INACTIVE)
