"""termios plumbing for tty ports (layer 1; Linux first, other POSIX where it can).

Only non-blocking calls live here: ``tcgetattr``, ``tcsetattr(TCSANOW)`` and
ioctls. ``tcsetattr`` is always ``TCSANOW``: ``TCSADRAIN``/``TCSAFLUSH`` would
wait for output (on the event loop) or throw away input.
"""

from __future__ import annotations

import ctypes
import fcntl
import platform
import struct
import sys
import termios
from collections.abc import Callable
from typing import Any, ClassVar, Final

from ._settings import Parity, SerialSettings, StopBits

_IFLAG, _OFLAG, _CFLAG, _LFLAG, _ISPEED, _OSPEED, _CC = range(7)

#: Linux "mark/space parity" flag; not exported by Python's termios module.
CMSPAR: Final = getattr(termios, "CMSPAR", 0o10000000000 if sys.platform.startswith("linux") else 0)
CRTSCTS: Final = getattr(termios, "CRTSCTS", 0)

_CSIZE: Final = {5: termios.CS5, 6: termios.CS6, 7: termios.CS7, 8: termios.CS8}

#: rate -> Bxxx constant, for every standard rate this platform's termios knows.
STANDARD_RATES: Final[dict[int, int]] = {
    int(name[1:]): getattr(termios, name)
    for name in dir(termios)
    if name.startswith("B") and name[1:].isdigit() and int(name[1:]) > 0
}

# Linux termios2 (custom baud rates). The ioctl numbers and struct layout are
# those of asm-generic (x86, arm, aarch64, riscv, s390, loongarch). powerpc,
# mips, sparc and alpha differ; there we refuse non-standard rates rather than
# guess, and say so.
_BOTHER: Final = 0o010000
_CBAUD: Final = 0o010017
_IBSHIFT: Final = 16
_TERMIOS2: Final = struct.Struct("=4I B 19B 2I")  # iflag oflag cflag lflag, line, cc[19], speeds
_GENERIC_MACHINES: Final = ("x86_64", "i386", "i686", "aarch64", "arm", "riscv", "s390", "loong")
TCGETS2: Final = 0x802C542A
TCSETS2: Final = 0x402C542B


def termios2_supported() -> bool:
    """True where we know this platform's ``termios2`` ioctl numbers."""
    machine = platform.machine().lower()
    return sys.platform.startswith("linux") and machine.startswith(_GENERIC_MACHINES)


def _mask(*names: str) -> int:
    """The termios flags named (those this platform has), or'ed together."""
    bits = 0
    for name in names:
        bits |= getattr(termios, name, 0)
    return bits


_RAW_LFLAG_OFF: Final = _mask(
    "ICANON", "ECHO", "ECHOE", "ECHOK", "ECHONL", "ISIG", "IEXTEN", "ECHOCTL", "ECHOKE"
)
_RAW_OFLAG_OFF: Final = _mask("OPOST", "ONLCR", "OCRNL")
_RAW_IFLAG_OFF: Final = _mask(
    "INLCR", "IGNCR", "ICRNL", "IGNBRK", "IUCLC", "PARMRK", "ISTRIP", "IXANY"
)


def _raw(attrs: list[Any]) -> None:
    """Raw, binary, no echo, no signals: what a serial port needs (as pyserial sets it)."""
    attrs[_IFLAG] = int(attrs[_IFLAG]) & ~_RAW_IFLAG_OFF
    attrs[_OFLAG] = int(attrs[_OFLAG]) & ~_RAW_OFLAG_OFF
    attrs[_CFLAG] = int(attrs[_CFLAG]) | termios.CLOCAL | termios.CREAD
    attrs[_LFLAG] = int(attrs[_LFLAG]) & ~_RAW_LFLAG_OFF


def build_attrs(current: list[Any], settings: SerialSettings) -> tuple[list[Any], bool]:
    """The termios attribute list for *settings*, starting from *current*.

    Returns the list and whether the baud rate needs ``termios2`` (a
    non-standard rate, set separately by :func:`set_custom_baudrate`).
    VMIN=1/VTIME=0 is always set: with pyserial's VMIN=0 an idle ``read``
    returns ``b""``, which looks exactly like a hangup.
    """
    attrs = list(current)
    attrs[_CC] = list(attrs[_CC])
    _raw(attrs)
    iflag = int(attrs[_IFLAG])
    cflag = int(attrs[_CFLAG])

    cflag = (cflag & ~termios.CSIZE) | _CSIZE[settings.bytesize]

    if settings.stopbits is StopBits.ONE:
        cflag &= ~termios.CSTOPB
    else:  # 1.5 is sent as 2 on POSIX, as pyserial does
        cflag |= termios.CSTOPB

    iflag &= ~(termios.INPCK | termios.ISTRIP)
    cflag &= ~(termios.PARENB | termios.PARODD | CMSPAR)
    parity = settings.parity
    if parity is Parity.EVEN:
        cflag |= termios.PARENB
    elif parity is Parity.ODD:
        cflag |= termios.PARENB | termios.PARODD
    elif parity in (Parity.MARK, Parity.SPACE):
        if not CMSPAR:
            raise ValueError(f"parity {parity.name.lower()} is not supported on {sys.platform}")
        cflag |= termios.PARENB | CMSPAR | (termios.PARODD if parity is Parity.MARK else 0)

    if settings.xonxoff:
        iflag |= termios.IXON | termios.IXOFF
    else:
        iflag &= ~(termios.IXON | termios.IXOFF)

    if CRTSCTS:
        cflag = cflag | CRTSCTS if settings.rtscts else cflag & ~CRTSCTS
    elif settings.rtscts:
        raise ValueError(f"rtscts flow control is not supported on {sys.platform}")

    custom = settings.baudrate not in STANDARD_RATES
    if sys.platform.startswith("linux"):
        cflag &= ~(_CBAUD << _IBSHIFT)  # input rate = output rate (drop a custom one)
    if not custom:
        speed = STANDARD_RATES[settings.baudrate]
        attrs[_ISPEED] = attrs[_OSPEED] = speed
        # tcsetattr's cfsetispeed/cfsetospeed put the rate into c_cflag (and
        # clear a BOTHER left by a custom rate); writing the Bxxx bits here by
        # hand would break with a libc whose speed_t values are plain rates.
    elif not termios2_supported():
        raise ValueError(
            f"baudrate {settings.baudrate} is not a standard rate, and custom rates are "
            f"not supported on {sys.platform}/{platform.machine()}"
        )

    cc = attrs[_CC]
    assert isinstance(cc, list)
    cc[termios.VMIN] = 1
    cc[termios.VTIME] = 0
    attrs[_IFLAG], attrs[_CFLAG] = iflag, cflag
    return attrs, custom


#: The c_cflag and c_iflag bits of the framing and flow control. A driver that
#: cannot do one of them may clear it and still report success (``tcsetattr``
#: fails only if it could apply nothing), so they are read back.
_FRAMING_CFLAG: Final = (
    termios.CSIZE | termios.CSTOPB | termios.PARENB | termios.PARODD | CMSPAR | CRTSCTS
)
_FLOW_IFLAG: Final = termios.IXON | termios.IXOFF


class NotTakenError(Exception):
    """The driver reported success but left out part of the settings.

    The previous settings have been put back. :attr:`parts` names what was
    left out (``"parity"``, ``"data bits"``...); :attr:`actual` is the framing
    the driver would have set, such as ``"8N1"``.
    """

    def __init__(self, parts: list[str], actual: str) -> None:
        super().__init__(f"the driver did not take the {' and '.join(parts)} (it set {actual})")
        self.parts = parts
        self.actual = actual


def _driver_forced_rtscts(asked: list[Any], got: list[Any]) -> bool:
    """Whether the driver turned RTS/CTS flow control on by itself, unasked.

    Some devices cannot work without it and their driver says so (``ftdi_sio``
    forces ``CRTSCTS`` for the HE TIRA-1, vendor drivers for UARTs wired for
    it): that is the flow control in force, not a part of the request left out.
    """
    return (
        bool(CRTSCTS) and not int(asked[_CFLAG]) & CRTSCTS and int(got[_CFLAG]) & CRTSCTS == CRTSCTS
    )


def _not_taken(asked: list[Any], got: list[Any]) -> list[str]:
    cdiff = (int(asked[_CFLAG]) ^ int(got[_CFLAG])) & _FRAMING_CFLAG
    idiff = (int(asked[_IFLAG]) ^ int(got[_IFLAG])) & _FLOW_IFLAG
    parts = []
    if cdiff & termios.CSIZE:
        parts.append("data bits")
    if cdiff & (termios.PARENB | termios.PARODD | CMSPAR):
        parts.append("parity")
    if cdiff & termios.CSTOPB:
        parts.append("stop bits")
    if cdiff & CRTSCTS and not _driver_forced_rtscts(asked, got):
        parts.append("rtscts flow control")
    if idiff:
        parts.append("xonxoff flow control")
    return parts


def settings_in_force(
    asked: list[Any], got: list[Any], settings: SerialSettings
) -> tuple[SerialSettings, list[str]]:
    """What is in force after asking for *settings* (as the attribute list
    *asked*) and reading back *got*, and the parts the driver left out.

    A left-out part is an error for the caller; RTS/CTS flow control that the
    driver turned on by itself is not (the device needs it), and the settings
    returned say ``rtscts=True``.
    """
    parts = _not_taken(asked, got)
    if not parts and not settings.rtscts and _driver_forced_rtscts(asked, got):
        settings = settings.replace(rtscts=True)
    return settings, parts


def describe_framing(iflag: int, cflag: int) -> str:
    """The framing that termios flags make, such as ``"7E1"`` or ``"8N1 rtscts"``."""
    size = {bits: n for n, bits in _CSIZE.items()}[cflag & termios.CSIZE]
    if not cflag & termios.PARENB:
        parity = Parity.NONE
    elif CMSPAR and cflag & CMSPAR:
        parity = Parity.MARK if cflag & termios.PARODD else Parity.SPACE
    else:
        parity = Parity.ODD if cflag & termios.PARODD else Parity.EVEN
    text = f"{size}{parity}{2 if cflag & termios.CSTOPB else 1}"
    if CRTSCTS and cflag & CRTSCTS:
        text += " rtscts"
    if iflag & _FLOW_IFLAG:
        text += " xonxoff"
    return text


def apply(fd: int, settings: SerialSettings) -> SerialSettings:
    """Apply *settings* to the tty *fd* now, in one call (``TCSANOW``); return
    the settings in force.

    No drain, no flush, and the modem lines are left as they are (the rate
    never passes through ``B0``, the one rate that drops DTR). A standard rate
    is one ``tcsetattr``; a custom rate is one ``TCSETS2`` that carries the
    flags, VMIN/VTIME and the rate together, so either way the driver sees a
    single change and a rejected value leaves the old settings in force.

    The framing and flow-control bits are read back: a driver that silently
    left one out (a pty's parity, mark/space parity on a UART without
    ``CMSPAR``, which would otherwise turn into odd/even parity) gets the old
    settings back and :exc:`NotTakenError` is raised. RTS/CTS flow control
    that the driver turns on by itself is kept, and the settings returned
    have ``rtscts=True`` (see :func:`settings_in_force`).
    """
    before = termios.tcgetattr(fd)
    attrs, custom = build_attrs(before, settings)
    before2 = None
    if (custom or int(before[_CFLAG]) & _CBAUD == _BOTHER) and termios2_supported():
        # termios2 is needed to set a custom rate, and to put one back: a
        # standard rate in force is restored by tcsetattr(before) alone.
        before2 = bytearray(_TERMIOS2.size)
        fcntl.ioctl(fd, TCGETS2, before2)
    if custom:
        assert before2 is not None  # build_attrs refuses custom rates without termios2
        _set_custom(fd, attrs, settings.baudrate, before2)
    else:
        termios.tcsetattr(fd, termios.TCSANOW, attrs)
    got = termios.tcgetattr(fd)
    in_force, parts = settings_in_force(attrs, got, settings)
    if parts:
        # Back to exactly what was in force, custom rate included.
        if before2 is not None:
            fcntl.ioctl(fd, TCSETS2, bytes(before2))
        else:
            termios.tcsetattr(fd, termios.TCSANOW, before)
        raise NotTakenError(parts, describe_framing(int(got[_IFLAG]), int(got[_CFLAG])))
    return in_force


def _set_custom(fd: int, attrs: list[Any], baudrate: int, current: bytearray) -> None:
    """One ``TCSETS2``: *attrs*' flags and VMIN/VTIME with the rate *baudrate*."""
    fields = list(_TERMIOS2.unpack(current))
    fields[0:4] = (int(attrs[_IFLAG]), int(attrs[_OFLAG]), int(attrs[_CFLAG]), int(attrs[_LFLAG]))
    # Output and input rate both BOTHER: the speeds below are the rates.
    cflag = fields[2] & ~_CBAUD & ~(_CBAUD << _IBSHIFT)
    fields[2] = cflag | _BOTHER | (_BOTHER << _IBSHIFT)
    fields[5 + termios.VMIN] = 1
    fields[5 + termios.VTIME] = 0
    fields[-2] = fields[-1] = baudrate
    fcntl.ioctl(fd, TCSETS2, _TERMIOS2.pack(*fields))


def set_hupcl(fd: int, value: bool) -> None:
    """Set or clear ``HUPCL`` (lower DTR/RTS on the last close)."""
    attrs = termios.tcgetattr(fd)
    cflag = int(attrs[_CFLAG])
    new = cflag | termios.HUPCL if value else cflag & ~termios.HUPCL
    if new != cflag:
        attrs[_CFLAG] = new
        termios.tcsetattr(fd, termios.TCSANOW, attrs)


def _cc_int(value: int | bytes) -> int:
    return value if isinstance(value, int) else value[0]


def ensure_vmin(fd: int) -> None:
    """Re-assert VMIN=1, VTIME=0 if something reset them behind our back."""
    attrs = termios.tcgetattr(fd)
    cc = attrs[_CC]
    if _cc_int(cc[termios.VMIN]) != 1 or _cc_int(cc[termios.VTIME]) != 0:
        cc = list(cc)
        cc[termios.VMIN], cc[termios.VTIME] = 1, 0
        attrs[_CC] = cc
        termios.tcsetattr(fd, termios.TCSANOW, attrs)


# --------------------------------------------------------------------------
# The control surface's one seam: every modem-line, break, queue and flush
# request of a tty port goes through an ``Ioctl`` callable (``os_ioctl`` in
# production). Tests plug in a model of a UART's lines
# (:class:`trioserial.testing.FakeModem`), because a pty has no modem lines.

#: ``(fd, request, arg) -> result`` in :func:`fcntl.ioctl`'s shape: an ``int``
#: argument returns an ``int``; a ``bytes`` argument is the input buffer and
#: the (possibly updated) buffer is returned.
Ioctl = Callable[[int, int, "int | bytes"], "int | bytes"]


def os_ioctl(fd: int, request: int, arg: int | bytes) -> int | bytes:
    """The real thing: :func:`fcntl.ioctl`."""
    if isinstance(arg, int):  # two calls, so each matches one of fcntl.ioctl's overloads
        return fcntl.ioctl(fd, request, arg)
    return fcntl.ioctl(fd, request, arg)


def _generic(value: int) -> int | None:
    """*value* where the asm-generic ioctl numbers hold, else ``None`` (unknown here)."""
    return value if termios2_supported() else None


TIOCM_DTR: Final = termios.TIOCM_DTR
TIOCM_RTS: Final = termios.TIOCM_RTS
TIOCM_CTS: Final = termios.TIOCM_CTS
TIOCM_DSR: Final = termios.TIOCM_DSR
TIOCM_RI: Final = termios.TIOCM_RI
TIOCM_CD: Final = termios.TIOCM_CD
TIOCMGET: Final = termios.TIOCMGET
TIOCMBIS: Final = termios.TIOCMBIS
TIOCMBIC: Final = termios.TIOCMBIC
TIOCINQ: Final = termios.FIONREAD
TIOCOUTQ: Final = termios.TIOCOUTQ
TCFLSH: Final = termios.TCFLSH
TCIFLUSH: Final = termios.TCIFLUSH
TCOFLUSH: Final = termios.TCOFLUSH
TCIOFLUSH: Final = termios.TCIOFLUSH
TIOCSERGETLSR: Final[int | None] = getattr(termios, "TIOCSERGETLSR", None)
TIOCSER_TEMT: Final = getattr(termios, "TIOCSER_TEMT", 1)
TIOCEXCL: Final = termios.TIOCEXCL
TIOCNXCL: Final = termios.TIOCNXCL
TIOCGICOUNT: Final[int | None] = getattr(termios, "TIOCGICOUNT", None)
TIOCGSERIAL: Final[int | None] = getattr(termios, "TIOCGSERIAL", None)
TIOCSSERIAL: Final[int | None] = getattr(termios, "TIOCSSERIAL", None)
# Not exported by Python's termios module: the asm-generic numbers.
TIOCSBRK: Final = getattr(termios, "TIOCSBRK", None) or _generic(0x5427)
TIOCCBRK: Final = getattr(termios, "TIOCCBRK", None) or _generic(0x5428)
TIOCGRS485: Final = getattr(termios, "TIOCGRS485", None) or _generic(0x542E)
TIOCSRS485: Final = getattr(termios, "TIOCSRS485", None) or _generic(0x542F)

#: ``int`` as the kernel reads and writes it for TIOCM*/TIOCINQ/TIOCOUTQ.
INT: Final = struct.Struct("=i")
#: ``struct serial_icounter_struct``: cts dsr rng dcd tx rx frame overrun parity brk buf_overrun
#: reserved[9].
ICOUNT: Final = struct.Struct("=20i")

#: ``ASYNC_LOW_LATENCY`` in ``serial_struct.flags``.
ASYNC_LOW_LATENCY: Final = 1 << 13


class _SerialStruct(ctypes.Structure):
    """``struct serial_struct`` (linux/serial.h), for its size and ``flags`` offset."""

    _fields_: ClassVar = [
        ("type", ctypes.c_int),
        ("line", ctypes.c_int),
        ("port", ctypes.c_uint),
        ("irq", ctypes.c_int),
        ("flags", ctypes.c_int),
        ("xmit_fifo_size", ctypes.c_int),
        ("custom_divisor", ctypes.c_int),
        ("baud_base", ctypes.c_int),
        ("close_delay", ctypes.c_ushort),
        ("io_type", ctypes.c_char),
        ("reserved_char", ctypes.c_char),
        ("hub6", ctypes.c_int),
        ("closing_wait", ctypes.c_ushort),
        ("closing_wait2", ctypes.c_ushort),
        ("iomem_base", ctypes.c_void_p),
        ("iomem_reg_shift", ctypes.c_ushort),
        ("port_high", ctypes.c_uint),
        ("iomap_base", ctypes.c_ulong),
    ]


SERIAL_STRUCT_SIZE: Final = ctypes.sizeof(_SerialStruct)
_SERIAL_FLAGS: Final = struct.Struct("=i")
_SERIAL_FLAGS_OFFSET: Final = _SerialStruct.flags.offset


def serial_flags(data: bytes) -> int:
    """``serial_struct.flags`` from a ``TIOCGSERIAL`` buffer."""
    return int(_SERIAL_FLAGS.unpack_from(data, _SERIAL_FLAGS_OFFSET)[0])


def with_serial_flags(data: bytes, flags: int) -> bytes:
    """A copy of the ``serial_struct`` buffer *data* with *flags*."""
    out = bytearray(data)
    _SERIAL_FLAGS.pack_into(out, _SERIAL_FLAGS_OFFSET, flags)
    return bytes(out)
