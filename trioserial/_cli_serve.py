"""``trioserial serve``: share a port over TCP (layer 3).

Registered by :func:`._cli.build_parser`; the server is
:func:`trioserial.serve_rfc2217`, and this module only turns options into
its arguments and its log into lines on stderr.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any, Final

from ._cli import _add_line_options, _open_options, _open_port

#: RFC 2217's usual port (what ``serve_rfc2217`` listens on by default); the
#: server itself is imported when ``serve`` runs, not to build the parser.
DEFAULT_PORT_NUMBER: Final = 2217

__all__ = ["add_serve_command", "parse_listen"]

DEFAULT_LISTEN: Final = f"127.0.0.1:{DEFAULT_PORT_NUMBER}"


def parse_listen(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) as ``(host, port)``, or a ValueError."""
    host, sep, number = text.rpartition(":")
    if not sep or not number.isdigit() or not 0 <= int(number) <= 65535:
        raise ValueError(f"--listen must be HOST:PORT with a port of 0 to 65535, got {text!r}")
    host = host.removeprefix("[").removesuffix("]")
    return host or "127.0.0.1", int(number)


def cmd_serve(
    args: argparse.Namespace, parser: argparse.ArgumentParser
) -> Callable[[], Awaitable[int]]:
    try:
        host, number = parse_listen(args.listen)
    except ValueError as exc:
        parser.error(str(exc))
    if args.observers < 0:
        parser.error(f"--observers must be 0 or more, got {args.observers}")
    open_options = _open_options(args, parser)

    async def body() -> int:
        from ._server import serve_rfc2217

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("trioserial serve: %(message)s"))
        log = logging.getLogger("trioserial.server")
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        try:
            async with await _open_port(args.url, open_options) as port:
                await serve_rfc2217(
                    port, host=host, port_number=number, raw=args.raw, observers=args.observers
                )
        finally:
            log.removeHandler(handler)

    return body


def add_serve_command(command: Callable[..., argparse.ArgumentParser]) -> None:
    """Add ``serve`` through ``build_parser``'s *command* helper."""
    options: dict[str, Any] = {
        "help": "share a port over TCP (RFC 2217, or raw with --raw)",
        "description": "Serve PORT to RFC 2217 clients (pyserial's rfc2217://, trioserial's,\n"
        "ser2net-style telnet clients) until Ctrl-C, logging connections on stderr.\n"
        "One client controls the port; --observers N more may watch, read-only.\n"
        "RFC 2217 has no authentication: keep the default 127.0.0.1 and reach it\n"
        "through SSH (ssh -L 2217:127.0.0.1:2217 HOST) rather than listening on a\n"
        "public address.",
        "epilog": "examples:\n"
        "  trioserial serve /dev/ttyUSB0\n"
        "  trioserial serve /dev/ttyUSB0 --observers 2 --listen 127.0.0.1:4000\n"
        "  trioserial serve loop:// --raw",
        "formatter_class": argparse.RawDescriptionHelpFormatter,
    }
    p = command("serve", cmd_serve, **options)
    p.add_argument("url", metavar="PORT", help="device path (/dev/ttyUSB0) or URL")
    p.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        metavar="HOST:PORT",
        help=f"where to listen (default: {DEFAULT_LISTEN}; another host prints a warning)",
    )
    p.add_argument("--raw", action="store_true", help="plain TCP without Telnet (socket://, nc)")
    p.add_argument(
        "--observers",
        type=int,
        default=0,
        metavar="N",
        help="read-only clients allowed beside the controlling one (default: 0)",
    )
    _add_line_options(p)
