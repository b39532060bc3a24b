"""``trioserial send`` and ``trioserial receive`` (layer 3): X/Y/ZMODEM from the command line.

Registered by ``_cli.build_parser``. Progress goes to stderr: a bar redrawn
in place on a terminal, one line per file otherwise. Ctrl-C cancels the
transfer the way :mod:`trioserial.transfer` documents (the peer is told)
and the command exits with 130.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import sys
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Final, TextIO

import attrs

from ._cli import Body, CliError, _add_line_options, _open_options, _open_port
from ._stream import AsyncSerial

if TYPE_CHECKING:
    from .transfer import TransferProgress

__all__ = ["Progress", "add_transfer_commands"]

PROTOCOLS: Final = ("xmodem", "xmodem1k", "ymodem", "zmodem")
#: The protocols that carry file names (and so send several files, into a directory).
BATCH: Final = ("ymodem", "zmodem")
Command = Callable[..., argparse.ArgumentParser]


def _size(n: float) -> str:
    for unit in ("B", "KiB", "MiB"):
        if n < 1024 or unit == "MiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


@attrs.define
class Progress:
    """The ``progress`` callback of the commands: a bar on a terminal, else a line per file."""

    out: TextIO
    tty: bool
    clock: Callable[[], float] = time.monotonic
    _name: str | None = None
    _start: float = 0.0
    _last_draw: float = 0.0
    _reported: str | None = None

    def __call__(self, p: TransferProgress) -> None:
        now = self.clock()
        if p.name != self._name:
            self._name, self._start, self._last_draw = p.name, now, 0.0
        elapsed = max(now - self._start, 1e-6)
        rate = p.done / elapsed
        finished = p.total is not None and p.done == p.total
        name = p.name or "data"
        if finished:
            if self._reported == p.name:
                return  # the last block's report, then the end's: one line
            self._reported = p.name
            line = f"{name}: {p.done} bytes in {elapsed:.1f} s ({_size(rate)}/s)"
            print(("\r\x1b[K" if self.tty else "") + line, file=self.out, flush=True)
        elif self.tty and now - self._last_draw >= 0.1:
            self._last_draw = now
            if p.total:
                left = (p.total - p.done) / rate if rate else 0.0
                bar = "#" * (20 * p.done // p.total)
                text = (
                    f"{name} [{bar:<20}] {100 * p.done // p.total:3d}% {_size(p.done)} "
                    f"{_size(rate)}/s ETA {int(left) // 60}:{int(left) % 60:02d}"
                )
            else:
                text = f"{name} {_size(p.done)} {_size(rate)}/s"
            print(f"\r\x1b[K{text}", end="", file=self.out, flush=True)


def _progress() -> Progress:
    return Progress(sys.stderr, sys.stderr.isatty())


def cmd_send(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Body:
    from . import transfer  # when the command runs, not to build the parser

    options = _checked_options(args, parser)
    if args.protocol not in BATCH and len(args.files) != 1:
        parser.error(
            f"{args.protocol} sends one file; got {len(args.files)} (use ymodem or zmodem)"
        )

    def run(port: AsyncSerial, common: dict[str, Any]) -> Awaitable[object]:
        if args.protocol == "zmodem":
            return transfer.zmodem_send(port, args.files, resume=args.resume, **common)
        if args.protocol == "ymodem":
            return transfer.ymodem_send(port, args.files, **common)
        block_size = 1024 if args.protocol == "xmodem1k" else 128
        return transfer.xmodem_send(port, args.files[0], block_size=block_size, **common)

    return _body(args, options, run)


def cmd_receive(args: argparse.Namespace, parser: argparse.ArgumentParser) -> Body:
    from . import transfer  # when the command runs, not to build the parser

    options = _checked_options(args, parser)
    target = args.target
    if args.protocol in BATCH:
        if args.size is not None:
            parser.error(f"--size is for xmodem ({args.protocol} headers carry the size)")
        target = target or "."
        if not os.path.isdir(target):
            parser.error(f"{args.protocol} receives into a directory; {target!r} is not one")
    elif target is None or os.path.isdir(target):
        parser.error("xmodem sends no file name: give the FILE to write")

    def run(port: AsyncSerial, common: dict[str, Any]) -> Awaitable[object]:
        if args.protocol == "zmodem":
            return transfer.zmodem_receive(port, target, resume=args.resume, **common)
        if args.protocol == "ymodem":
            return transfer.ymodem_receive(port, target, **common)
        return transfer.xmodem_receive(port, pathlib.Path(target), size=args.size, **common)

    return _body(args, options, run)


def _checked_options(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The port's options, and the checks both commands share (usage errors)."""
    options = _open_options(args, parser)
    if not args.timeout > 0:
        parser.error(f"--timeout must be a positive number of seconds, got {args.timeout}")
    if args.resume and args.protocol != "zmodem":
        parser.error(f"--resume is for zmodem ({args.protocol} cannot resume a file)")
    return options


def _body(
    args: argparse.Namespace,
    options: dict[str, Any],
    run: Callable[[AsyncSerial, dict[str, Any]], Awaitable[object]],
) -> Body:
    """Open the port, *run* the transfer with the progress and timeout options, close."""
    from . import transfer

    async def body() -> int:
        async with await _open_port(args.url, options) as port:
            try:
                await run(port, {"progress": _progress(), "timeout": args.timeout})
            except transfer.TransferError as exc:
                raise CliError(str(exc)) from exc
        return 0

    return body


def add_transfer_commands(command: Command) -> None:
    """Add ``send`` and ``receive`` with *command*, ``build_parser``'s subcommand factory."""
    common: dict[str, Any] = {"formatter_class": argparse.RawDescriptionHelpFormatter}
    p = command(
        "send",
        cmd_send,
        help="send files with XMODEM, YMODEM or ZMODEM (to loadx/loady, rb, rz, ...)",
        description="Send FILEs to the device with XMODEM, XMODEM-1K, YMODEM batch or\n"
        "ZMODEM. Start the receiver first (U-Boot: 'loady', Linux: 'rb' or 'rz');\n"
        "the sender waits for it. Ctrl-C cancels the transfer and tells the receiver.",
        epilog="example:\n  trioserial send /dev/ttyUSB0 image.itb --protocol ymodem",
        **common,
    )
    p.add_argument("url", metavar="PORT", help="device path (/dev/ttyUSB0) or URL")
    p.add_argument("files", nargs="+", metavar="FILE", help="the file(s) to send")
    p.add_argument(
        "--resume",
        action="store_true",
        help="zmodem: ask the receiver to continue files it holds part of",
    )
    _add_transfer_options(p)
    p = command(
        "receive",
        cmd_receive,
        help="receive files with XMODEM, YMODEM or ZMODEM (from sb, sx, sz, ...)",
        description="Receive files from the device. YMODEM and ZMODEM write each file\n"
        "under its own (checked) name into DIR (default: the current directory);\n"
        "XMODEM writes FILE. Ctrl-C cancels the transfer and tells the sender.",
        epilog="example:\n  trioserial receive /dev/ttyUSB0 logs/ --protocol ymodem",
        **common,
    )
    p.add_argument("url", metavar="PORT", help="device path (/dev/ttyUSB0) or URL")
    p.add_argument("target", nargs="?", metavar="DIR|FILE", help="where to write")
    p.add_argument(
        "--size", type=int, metavar="BYTES", help="xmodem: the file's size (cuts the padding)"
    )
    p.add_argument(
        "--resume",
        action="store_true",
        help="zmodem: continue NAME.part files an interrupted receive left; skip complete files",
    )
    _add_transfer_options(p)


def _add_transfer_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--protocol", choices=PROTOCOLS, default="ymodem", help="default: ymodem")
    p.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="how long the other side may stay silent (default: 60)",
    )
    _add_line_options(p)
