"""Open-time policy and RS-485 settings: frozen, validated values (layer 0)."""

from __future__ import annotations

import math
import struct
from typing import Any, Final

import attrs

from ._util import bool_validator

__all__ = ["MAX_RS485_DELAY", "OpenOptions", "RS485Settings"]

#: Linux clamps the RTS delays of RS-485 to 100 ms (``RS485_MAX_RTS_DELAY``).
MAX_RS485_DELAY: Final = 0.1

# struct serial_rs485 (linux/serial.h): flags, delay_rts_before_send,
# delay_rts_after_send (ms), then 5 words of padding/addresses: 32 bytes.
_RS485: Final = struct.Struct("=3I5I")
SER_RS485_ENABLED: Final = 1 << 0
SER_RS485_RTS_ON_SEND: Final = 1 << 1
SER_RS485_RTS_AFTER_SEND: Final = 1 << 2
SER_RS485_RX_DURING_TX: Final = 1 << 4
SER_RS485_TERMINATE_BUS: Final = 1 << 5


def _check_optional_bool(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if value is not None and not isinstance(value, bool):
        raise TypeError(
            f"{attribute.name} must be True, False or None (leave as is), got {value!r}"
        )


def _check_delay(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{attribute.name} must be a number of seconds, got {value!r}")
    if not (math.isfinite(value) and 0 <= value <= MAX_RS485_DELAY):
        raise ValueError(
            f"{attribute.name} must be between 0 and {MAX_RS485_DELAY} seconds "
            f"(Linux clamps RTS delays to 100 ms), got {value!r}"
        )


@attrs.frozen(kw_only=True)
class RS485Settings:
    """RS-485 half-duplex mode, as Linux drivers do it in the kernel (``TIOCSRS485``).

    The UART drives RTS as the transceiver's driver-enable while it sends, so
    turnaround happens at the right bit, which no user-space toggling can do.
    Field names follow :class:`serial.rs485.RS485Settings`.

    Attributes:
      enabled: turn RS-485 mode on (False turns it off).
      rts_level_for_tx: the RTS level while sending (``SER_RS485_RTS_ON_SEND``).
      rts_level_for_rx: the RTS level while not sending (``SER_RS485_RTS_AFTER_SEND``).
      loopback: keep receiving while sending, to hear our own bytes
        (``SER_RS485_RX_DURING_TX``).
      terminate_bus: switch on the bus termination, on boards that can
        (``SER_RS485_TERMINATE_BUS``).
      delay_before_tx: seconds between raising RTS and the first bit,
        0 to 0.1 (kept in whole milliseconds).
      delay_before_rx: seconds between the last bit and releasing RTS,
        0 to 0.1 (kept in whole milliseconds).
    """

    enabled: bool = attrs.field(default=True, validator=bool_validator)
    rts_level_for_tx: bool = attrs.field(default=True, validator=bool_validator)
    rts_level_for_rx: bool = attrs.field(default=False, validator=bool_validator)
    loopback: bool = attrs.field(default=False, validator=bool_validator)
    terminate_bus: bool = attrs.field(default=False, validator=bool_validator)
    delay_before_tx: float = attrs.field(default=0.0, validator=_check_delay)
    delay_before_rx: float = attrs.field(default=0.0, validator=_check_delay)

    def to_struct(self) -> bytes:
        """``struct serial_rs485`` for ``TIOCSRS485``."""
        flags = 0
        for on, bit in (
            (self.enabled, SER_RS485_ENABLED),
            (self.rts_level_for_tx, SER_RS485_RTS_ON_SEND),
            (self.rts_level_for_rx, SER_RS485_RTS_AFTER_SEND),
            (self.loopback, SER_RS485_RX_DURING_TX),
            (self.terminate_bus, SER_RS485_TERMINATE_BUS),
        ):
            flags |= bit if on else 0
        before = round(self.delay_before_tx * 1000)
        after = round(self.delay_before_rx * 1000)
        return _RS485.pack(flags, before, after, 0, 0, 0, 0, 0)

    @classmethod
    def from_struct(cls, data: bytes) -> RS485Settings:
        """Decode ``struct serial_rs485`` as ``TIOCGRS485`` returns it."""
        flags, before, after, *_ = _RS485.unpack(data[: _RS485.size])
        return cls(
            enabled=bool(flags & SER_RS485_ENABLED),
            rts_level_for_tx=bool(flags & SER_RS485_RTS_ON_SEND),
            rts_level_for_rx=bool(flags & SER_RS485_RTS_AFTER_SEND),
            loopback=bool(flags & SER_RS485_RX_DURING_TX),
            terminate_bus=bool(flags & SER_RS485_TERMINATE_BUS),
            delay_before_tx=min(before, 100) / 1000,
            delay_before_rx=min(after, 100) / 1000,
        )


def _check_rs485(_inst: object, _attribute: object, value: Any) -> None:
    if value is not None and not isinstance(value, RS485Settings):
        raise TypeError(f"rs485 must be an RS485Settings or None, got {value!r}")


@attrs.frozen(kw_only=True)
class OpenOptions:
    """What to do to the port's lines and driver once it is open.

    ``None`` always means "leave it as the driver has it", so opening a port
    does not reset a board wired to DTR/RTS (Arduino, ESP32) unless asked to.

    Attributes:
      dtr: drive DTR high (True) or low (False) right after opening.
      rts: drive RTS high (True) or low (False) right after opening.
      hupcl: whether closing the port lowers DTR and RTS (termios
        ``HUPCL``); False keeps a DTR-reset board running across a close.
      low_latency: the Linux driver's ``ASYNC_LOW_LATENCY`` flag.
      rs485: RS-485 mode (``TIOCSRS485``).
    """

    dtr: bool | None = attrs.field(default=None, validator=_check_optional_bool)
    rts: bool | None = attrs.field(default=None, validator=_check_optional_bool)
    hupcl: bool | None = attrs.field(default=None, validator=_check_optional_bool)
    low_latency: bool | None = attrs.field(default=None, validator=_check_optional_bool)
    rs485: RS485Settings | None = attrs.field(default=None, validator=_check_rs485)
