"""Serial line settings: frozen, validated values (layer 0)."""

from __future__ import annotations

import enum
import sys
from typing import Any, Final, TypedDict

if sys.version_info >= (3, 11):
    from typing import Unpack
else:  # typing_extensions: a dependency on Python 3.10
    from typing_extensions import Unpack

import attrs

from ._util import bool_validator

__all__ = [
    "MAX_BAUDRATE",
    "ModemLines",
    "Parity",
    "SerialSettings",
    "SerialStatistics",
    "SettingsChanges",
    "StopBits",
    "Unpack",
]

#: The largest rate the Linux termios2 interface can carry (``speed_t`` is 32 bits;
#: drivers reject what their hardware cannot do, and that error names the rate).
MAX_BAUDRATE: Final = 2**31 - 1


class Parity(str, enum.Enum):
    """Parity bit. The values are pyserial's (``serial.PARITY_EVEN == "E"``)."""

    NONE = "N"
    EVEN = "E"
    ODD = "O"
    MARK = "M"
    SPACE = "S"

    def __str__(self) -> str:
        return self.value


class StopBits(float, enum.Enum):
    """Stop bits. The values are pyserial's (``serial.STOPBITS_ONE_POINT_FIVE == 1.5``)."""

    ONE = 1
    ONE_POINT_FIVE = 1.5
    TWO = 2

    def __str__(self) -> str:
        return f"{self.value:g}"


_PARITY_NAMES: Final = {p.name.lower(): p for p in Parity} | {p.value.lower(): p for p in Parity}


def _to_parity(value: Any) -> Parity:
    if isinstance(value, Parity):
        return value
    if isinstance(value, str) and value.lower() in _PARITY_NAMES:
        return _PARITY_NAMES[value.lower()]
    raise (TypeError if not isinstance(value, str) else ValueError)(
        f"parity must be one of 'N', 'E', 'O', 'M', 'S' (or none/even/odd/mark/space), "
        f"got {value!r}"
    )


#: 1, 1.0, 1.5, 2 and 2.0 hash as the members' values do.
_STOPBITS: Final = {member.value: member for member in StopBits}


def _to_stopbits(value: Any) -> StopBits:
    if isinstance(value, StopBits):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"stopbits must be 1, 1.5 or 2, got {value!r}")
    member = _STOPBITS.get(value)
    if member is None:
        raise ValueError(f"stopbits must be 1, 1.5 or 2, got {value!r}")
    return member


def _check_baudrate(_inst: object, _attr: object, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"baudrate must be an int, got {value!r}")
    if not 1 <= value <= MAX_BAUDRATE:
        raise ValueError(f"baudrate must be between 1 and {MAX_BAUDRATE}, got {value!r}")


def _check_bytesize(_inst: object, _attr: object, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"bytesize must be an int (5, 6, 7 or 8), got {value!r}")
    if value not in (5, 6, 7, 8):
        raise ValueError(f"bytesize must be 5, 6, 7 or 8, got {value!r}")


@attrs.frozen(kw_only=True)
class SerialSettings:
    """How the line is framed and flow-controlled.

    Every field is checked on construction (and by :meth:`replace`): a bad
    value raises :exc:`TypeError` or :exc:`ValueError` naming the field, the
    value and what is allowed, before anything touches a device.

    Attributes:
      baudrate: bits per second; standard rates use the classic ``Bxxx``
        constants, any other rate goes through Linux ``termios2``.
      bytesize: data bits per character, 5 to 8.
      parity: a :class:`Parity` (or its letter or name: ``"E"``, ``"even"``).
      stopbits: 1, 1.5 or 2. Linux has no 1.5: it is sent as 2, as pyserial does.
      xonxoff: software flow control (``IXON | IXOFF``).
      rtscts: hardware flow control (``CRTSCTS``).
      dsrdtr: DSR/DTR flow control. Linux has none in the kernel; like pyserial,
        it only means that DTR is left alone on open.
      exclusive: take an exclusive lock (``flock``) so a second opener gets
        :exc:`~trioserial.PortBusyError`.
    """

    baudrate: int = attrs.field(default=115200, validator=_check_baudrate)
    bytesize: int = attrs.field(default=8, validator=_check_bytesize)
    parity: Parity = attrs.field(default=Parity.NONE, converter=_to_parity)
    stopbits: StopBits = attrs.field(default=StopBits.ONE, converter=_to_stopbits)
    xonxoff: bool = attrs.field(default=False, validator=bool_validator)
    rtscts: bool = attrs.field(default=False, validator=bool_validator)
    dsrdtr: bool = attrs.field(default=False, validator=bool_validator)
    exclusive: bool = attrs.field(default=True, validator=bool_validator)

    def replace(self, **changes: Any) -> SerialSettings:
        """A copy with *changes* applied and validated. Unknown names raise :exc:`TypeError`."""
        unknown = sorted(set(changes) - set(attrs.fields_dict(SerialSettings)))
        if unknown:
            allowed = ", ".join(attrs.fields_dict(SerialSettings))
            raise TypeError(f"unknown serial setting(s) {', '.join(unknown)}; expected {allowed}")
        return attrs.evolve(self, **changes)

    @property
    def framing(self) -> str:
        """The usual short form, such as ``"115200 8N1"``."""
        return f"{self.baudrate} {self.bytesize}{self.parity.value}{self.stopbits}"


class SettingsChanges(TypedDict, total=False):
    """The :class:`SerialSettings` fields as keyword arguments, each optional.

    What ``reconfigure(**changes)`` and ``PySerial(url, **settings)`` take,
    so a type checker rejects an unknown name (``speed=9600``) or a value of
    the wrong type before the code runs; at run time :class:`SerialSettings`
    validates them again (and names the bad one).
    """

    baudrate: int
    bytesize: int
    parity: Parity | str
    stopbits: StopBits | float
    xonxoff: bool
    rtscts: bool
    dsrdtr: bool
    exclusive: bool


@attrs.frozen(kw_only=True)
class SerialStatistics:
    """Counters of one open port, from :meth:`AsyncSerial.statistics`.

    Attributes:
      bytes_sent: bytes handed to the OS so far. After a cancelled or failed
        ``send_all``, the difference from before the call is exactly how much
        of the data went out (the rest did not).
      bytes_received: bytes returned to callers so far.
      tasks_waiting_receive: tasks blocked waiting for input (0 or 1).
      tasks_waiting_send: tasks blocked waiting for room to send (0 or 1).
    """

    bytes_sent: int
    bytes_received: int
    tasks_waiting_receive: int
    tasks_waiting_send: int


@attrs.frozen(kw_only=True)
class ModemLines:
    """A snapshot of the modem control lines.

    Attributes:
      cts: Clear To Send (input).
      dsr: Data Set Ready (input).
      ri: Ring Indicator (input).
      cd: Carrier Detect (input).
      dtr: Data Terminal Ready (output, as we drive it).
      rts: Request To Send (output, as we drive it).
    """

    cts: bool = False
    dsr: bool = False
    ri: bool = False
    cd: bool = False
    dtr: bool = False
    rts: bool = False
