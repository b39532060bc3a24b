"""``spy://PORT?options``: any port plus a trace of its traffic (layer 1).

The port itself is opened natively (a device path, or another URL such as
``spy://loop://``); :class:`SpyPort` wraps its core and records every chunk
received (``RX``) and sent (``TX``) as a timestamped hexdump, and every
control call (``DTR``, ``RTS``, ``BRK``, ``Q-RX``/``Q-TX`` purges, ``SET``
for settings). The format is pyserial's spy format::

    000000.012 TX   0000  68 65 6C 6C 6F                                    hello

URL options (as pyserial's, plus ``logger``):

* ``file=PATH``: write the trace to *PATH* (truncated on open).
* ``logger=NAME``: send each line to the :mod:`logging` logger *NAME* at
  INFO level. Without ``file`` or ``logger`` the trace goes to the
  ``trioserial.spy`` logger.
* ``color``: ANSI colours (RX green, TX red, control white).
* ``raw``: the bytes themselves instead of a hexdump, no control calls.
* ``all``: also trace queries (``in_waiting``, ``out_waiting``, modem lines).

The inner port's own URL cannot carry options through ``spy://`` (the
query belongs to spy). Trace lines go to a regular file or a logging
handler from the event loop thread: small buffered writes, as any logging
call makes.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from typing import BinaryIO, Final

from ._core import PortCore
from ._errors import SerialPortError, UnsupportedURLError
from ._options import OpenOptions
from ._settings import ModemLines, SerialSettings
from ._url import parse_options, split_url

__all__ = [
    "MAX_NESTING",
    "SpyPort",
    "Tracer",
    "check_nesting",
    "hexdump",
    "open_spy",
    "start_trace",
    "traced",
]

DEFAULT_LOGGER: Final = "trioserial.spy"
#: How deep ``spy://spy://...`` may nest.
MAX_NESTING: Final = 8
_RX_COLOR: Final = "\x1b[32m"
_TX_COLOR: Final = "\x1b[31m"
_CONTROL_COLOR: Final = "\x1b[37m"
_RESET: Final = "\x1b[0m"


def hexdump(data: bytes) -> list[str]:
    """16 bytes a row: offset, hex (with a gap after 8) and printable ASCII."""
    rows = []
    for offset in range(0, len(data), 16):
        row = data[offset : offset + 16]
        hex_part = " ".join(f"{b:02X}" for b in row[:8])
        if len(row) > 8:
            hex_part += "  " + " ".join(f"{b:02X}" for b in row[8:])
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in row)
        rows.append(f"{offset:04X}  {hex_part:<48}  {text}")
    return rows


class Tracer:
    """Formats traffic and control calls and writes them to a file or logger."""

    def __init__(
        self,
        *,
        file: BinaryIO | None = None,
        logger: logging.Logger | None = None,
        color: bool = False,
        raw: bool = False,
        show_all: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._file = file
        self._logger = logger if file is None else None
        self.color = color
        self.raw = raw
        self.show_all = show_all
        self._clock = clock
        self._start = clock()

    def _line(self, label: str, text: str, color: str) -> None:
        line = f"{self._clock() - self._start:010.3f} {label:<4} {text}"
        if self.color:
            line = f"{color}{line}{_RESET}"
        if self._file is not None:
            self._write(line.encode("utf-8", "replace") + b"\n")
        elif self._logger is not None:
            self._logger.info("%s", line)

    def _write(self, *chunks: bytes) -> None:
        """Write to the trace file; on a failure, stop tracing to it.

        The trace is a debugging aid: a full disk must not cost the port the
        bytes it has just read (or make a send look failed after it went out).
        """
        file = self._file
        assert file is not None
        try:
            for chunk in chunks:
                file.write(chunk)
            file.flush()
        except (OSError, ValueError) as exc:
            self._file = None
            with contextlib.suppress(OSError, ValueError):
                file.close()
            logging.getLogger(DEFAULT_LOGGER).warning(
                "spy: stopped writing the trace to %r: %s", getattr(file, "name", file), exc
            )

    def _data(self, label: str, data: bytes, color: str) -> None:
        if self.raw:
            if self._file is not None:
                prefix = color.encode() if self.color else b""
                self._write(prefix, data)
            elif self._logger is not None:
                self._logger.info("%s %r", label, data)
            return
        if not data:
            self._line(label, "<empty>", color)
        for row in hexdump(data):
            self._line(label, row, color)

    def rx(self, data: bytes) -> None:
        self._data("RX", data, _RX_COLOR)

    def tx(self, data: bytes) -> None:
        self._data("TX", data, _TX_COLOR)

    def control(self, label: str, text: str, *, query: bool = False) -> None:
        if self.raw or (query and not self.show_all):
            return
        self._line(label, text, _CONTROL_COLOR)

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()


class SpyPort(PortCore):
    """Wraps any core and traces what passes through it; behaves exactly like it."""

    def __init__(self, inner: PortCore, tracer: Tracer, name: str) -> None:
        self._inner = inner
        self.tracer = tracer
        self.name = name
        self.transport = inner.transport
        self.close_keeps_output = inner.close_keeps_output
        self.buffers_input = inner.buffers_input

    @property
    def settings(self) -> SerialSettings:
        return self._inner.settings

    @settings.setter
    def settings(self, settings: SerialSettings) -> None:
        self._inner.settings = settings

    def fileno(self) -> int:
        return self._inner.fileno()

    def on_input_buffered(self, callback: Callable[[], None]) -> None:
        self._inner.on_input_buffered(callback)

    def is_closed_error(self, exc: OSError) -> bool:
        return self._inner.is_closed_error(exc)

    def read_nowait(self, max_bytes: int) -> bytes:
        data = self._inner.read_nowait(max_bytes)
        self.tracer.rx(data)
        return data

    def write_nowait(self, data: memoryview) -> int:
        n = self._inner.write_nowait(data)
        self.tracer.tx(bytes(data[:n]))
        return n

    def apply_settings(self, settings: SerialSettings) -> None:
        self._inner.apply_settings(settings)
        self.tracer.control("SET", settings.framing + _flow(settings))

    def settings_pending(self) -> float | None:
        return self._inner.settings_pending()

    def modem_lines(self) -> ModemLines:
        lines = self._inner.modem_lines()
        self.tracer.control(
            "MDM",
            " ".join(
                f"{name.upper()}={int(getattr(lines, name))}" for name in ("cts", "dsr", "ri", "cd")
            ),
            query=True,
        )
        return lines

    def set_dtr(self, value: bool) -> None:
        self._inner.set_dtr(value)
        self.tracer.control("DTR", "active" if value else "inactive")

    def set_rts(self, value: bool) -> None:
        self._inner.set_rts(value)
        self.tracer.control("RTS", "active" if value else "inactive")

    def set_break(self, value: bool) -> None:
        self._inner.set_break(value)
        self.tracer.control("BRK", "active" if value else "inactive")

    @property
    def break_condition(self) -> bool:
        return self._inner.break_condition

    def modem_change_counts(self) -> tuple[int, int, int, int] | None:
        return self._inner.modem_change_counts()

    def transmitter_empty(self) -> bool | None:
        return self._inner.transmitter_empty()

    def apply_open_options(self, options: OpenOptions) -> None:
        self._inner.apply_open_options(options)
        self.tracer.control("OPEN", repr(options))

    def in_waiting(self) -> int:
        n = self._inner.in_waiting()
        self.tracer.control("Q-RX", f"in_waiting -> {n}", query=True)
        return n

    def out_waiting(self) -> int:
        n = self._inner.out_waiting()
        self.tracer.control("Q-TX", f"out_waiting -> {n}", query=True)
        return n

    def reset_input_buffer(self) -> None:
        self._inner.reset_input_buffer()
        self.tracer.control("Q-RX", "reset_input_buffer")

    def reset_output_buffer(self) -> None:
        self._inner.reset_output_buffer()
        self.tracer.control("Q-TX", "reset_output_buffer")

    def close(self) -> None:
        if self._inner.closed:
            return
        try:
            self._inner.close()
        finally:
            self.tracer.control("CLOSE", self.name)
            self.tracer.close()

    def __del__(self) -> None:
        # GC of a forgotten port: the inner core closes its own fd; close the
        # trace file explicitly (no ResourceWarning).
        tracer = getattr(self, "tracer", None)
        if tracer is not None:
            tracer.close()


def _flow(settings: SerialSettings) -> str:
    flags = [name for name in ("xonxoff", "rtscts", "dsrdtr") if getattr(settings, name)]
    return f" {'+'.join(flags)}" if flags else ""


def check_nesting(url: str) -> None:
    """Refuse ``spy://`` nested more than :data:`MAX_NESTING` deep (each level is a
    frame of recursion in the open, and more than one trace of the same port
    tells nothing new)."""
    depth = 0
    rest = url
    while rest[:6].lower() == "spy://":
        depth += 1
        rest = rest[6:]
    if depth > MAX_NESTING:
        shown = url if len(url) <= 60 else f"{url[:30]}...{url[-20:]}"
        raise UnsupportedURLError(
            f"spy:// nested {depth} deep in {shown!r}; at most {MAX_NESTING} levels are allowed",
            port=url,
        )


def parse_spy_url(url: str) -> tuple[str, dict[str, str | None]]:
    _, target, query = split_url(url)
    if not target:
        raise UnsupportedURLError(
            f"missing port in {url!r}: expected spy://PORT[?options]", port=url
        )
    options = parse_options(url, query, flags=("color", "raw", "all"), values=("file", "logger"))
    if "file" in options and "logger" in options:
        raise UnsupportedURLError(f"both file= and logger= in {url!r}: choose one", port=url)
    return target, options


def start_trace(url: str) -> tuple[str, Tracer]:
    """The port ``spy://PORT?options`` names, and the tracer its options ask for."""
    target, options = parse_spy_url(url)
    file: BinaryIO | None = None
    path = options.get("file")
    if path is not None:
        try:
            file = open(path, "wb")  # noqa: SIM115 - owned by the Tracer, closed with the port
        except OSError as exc:
            raise SerialPortError(
                f"cannot open {url!r}: cannot write the trace to {path!r}: {exc.strerror}",
                port=url,
                errno=exc.errno,
            ) from exc
    tracer = Tracer(
        file=file,
        logger=logging.getLogger(options.get("logger") or DEFAULT_LOGGER),
        color="color" in options,
        raw="raw" in options,
        show_all="all" in options,
    )
    return target, tracer


def traced(url: str, target: str, tracer: Tracer, inner: PortCore) -> SpyPort:
    """*inner*, the open port *target*, traced as ``spy://`` *url*."""
    tracer.control("OPEN", f"{target} {inner.settings.framing}{_flow(inner.settings)}")
    return SpyPort(inner, tracer, url)


def open_spy(
    url: str, settings: SerialSettings, open_inner: Callable[[str, SerialSettings], PortCore]
) -> SpyPort:
    """Open the port *url* names with *open_inner*, and trace it. Blocking."""
    target, tracer = start_trace(url)
    try:
        inner = open_inner(target, settings)
    except BaseException:
        tracer.close()
        raise
    return traced(url, target, tracer, inner)
