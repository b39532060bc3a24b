"""Parsing of pyserial-style port URLs (layer 0: pure functions, no I/O).

Every parser raises :exc:`~trioserial.UnsupportedURLError` with a message
that names the URL, the offending part and what was expected, so a bad URL
is reported before anything is opened.
"""

from __future__ import annotations

import ipaddress
import os
import urllib.parse
from collections.abc import Collection
from typing import Final

from ._errors import UnsupportedURLError

__all__ = [
    "LOG_LEVELS",
    "check_path",
    "is_decimal",
    "parse_host_port",
    "parse_log_level",
    "parse_options",
    "split_url",
]

#: pyserial's ``?logging=`` levels.
LOG_LEVELS: Final = {"debug": 10, "info": 20, "warning": 30, "error": 40}


def split_url(url: str) -> tuple[str, str, str]:
    """``"scheme://rest?query"`` -> ``(scheme in lower case, rest, query)``."""
    scheme, _, rest = url.partition("://")
    target, _, query = rest.partition("?")
    return scheme.lower(), target, query


def parse_options(
    url: str, query: str, *, flags: Collection[str] = (), values: Collection[str] = ()
) -> dict[str, str | None]:
    """Parse ``a&b=1`` into ``{"a": None, "b": "1"}``.

    *flags* are options without a value, *values* options that need one.
    Anything else is an :exc:`~trioserial.UnsupportedURLError` naming it.
    """
    found: dict[str, str | None] = {}
    for item in query.split("&") if query else ():
        if not item:
            continue
        name, eq, value = item.partition("=")
        name = urllib.parse.unquote(name)
        if name in flags and not eq:
            found[name] = None
        elif name in values:
            if not eq or not value:
                raise UnsupportedURLError(
                    f"option {name!r} in {url!r} needs a value ({name}=...)", port=url
                )
            found[name] = urllib.parse.unquote(value)
        else:
            known = sorted({*flags, *(f"{v}=..." for v in values)})
            expected = ", ".join(known) if known else "no options"
            what = "unknown" if name not in flags else "unexpected value for"
            raise UnsupportedURLError(
                f"{what} option {name!r} in {url!r}; expected {expected}", port=url
            )
    return found


def parse_host_port(url: str, target: str) -> tuple[str, int]:
    """``"HOST:PORT"`` (``"[::1]:PORT"`` for IPv6) -> ``(host, port)``.

    A trailing ``/`` is allowed (an empty path, as pyserial ignores it).
    """
    form = f"expected {url.partition('://')[0]}://HOST:PORT"
    target, slash, path = target.partition("/")
    if path:
        raise UnsupportedURLError(f"unexpected path {slash + path!r} in {url!r}: {form}", port=url)
    if target.startswith("["):
        host, bracket, rest = target[1:].partition("]")
        if bracket and not rest:
            raise UnsupportedURLError(f"missing port in {url!r}: {form}", port=url)
        if not bracket or not rest.startswith(":"):
            raise UnsupportedURLError(f"malformed host in {url!r}: {form}", port=url)
        port_text = rest[1:]
        try:
            ipaddress.IPv6Address(host)
        except ValueError:
            raise UnsupportedURLError(
                f"malformed IPv6 address {host!r} in {url!r}: {form}",
                port=url,
            ) from None
    else:
        host, colon, port_text = target.rpartition(":")
        if not colon:
            raise UnsupportedURLError(f"missing port in {url!r}: {form}", port=url)
        if ":" in host:
            raise UnsupportedURLError(
                f"malformed host {host!r} in {url!r}: put an IPv6 address in brackets, "
                f"[ADDRESS]:PORT",
                port=url,
            )
    if not host:
        raise UnsupportedURLError(f"missing host in {url!r}: {form}", port=url)
    try:
        # What socket.getaddrinfo does with a str host: a label over 63
        # characters, an empty one ("a..b") and the like fail here, before any I/O.
        host.encode("idna")
    except UnicodeError as exc:
        raise UnsupportedURLError(
            f"malformed host name {host!r} in {url!r}: not a valid DNS name ({exc})",
            port=url,
        ) from None
    if not is_decimal(port_text) or not 1 <= int(port_text) <= 65535:
        raise UnsupportedURLError(
            f"malformed port {port_text!r} in {url!r}: expected a number from 1 to 65535",
            port=url,
        )
    return host, int(port_text)


def check_path(path: str, url: str | None = None) -> None:
    """Raise if the device path *path* (inside *url*, if given) cannot reach the OS:
    :exc:`ValueError`, or with *url* :exc:`~trioserial.UnsupportedURLError` naming it.

    A NUL byte ends a C string; a lone surrogate (other than those
    :func:`os.fsencode` maps back to undecodable bytes) has no encoding.
    Either would otherwise surface as a bare :exc:`ValueError` or
    :exc:`UnicodeEncodeError` from deep inside ``os``.
    """
    if "\x00" in path:
        raise _path_error(path, url, "it contains a NUL byte")
    try:
        os.fsencode(path)
    except UnicodeEncodeError as exc:
        bad = path[exc.start : exc.end]
        raise _path_error(path, url, f"{bad!r} cannot be encoded for the file system") from None


def _path_error(path: str, url: str | None, what: str) -> ValueError:
    where = f"malformed device path {path!r}" + (f" in {url!r}" if url is not None else "")
    message = f"{where}: {what}"
    return ValueError(message) if url is None else UnsupportedURLError(message, port=url)


def is_decimal(text: str) -> bool:
    """Whether *text* is ASCII digits only (``str.isdigit`` also takes "²", "٣", ...)."""
    return text.isascii() and text.isdigit()


def parse_log_level(url: str, value: str | None) -> int | None:
    """pyserial's ``logging=LEVEL`` option as a :mod:`logging` level (``None`` if absent)."""
    if value is None:
        return None
    if value not in LOG_LEVELS:
        raise UnsupportedURLError(
            f"malformed logging level {value!r} in {url!r}; "
            f"expected one of {', '.join(LOG_LEVELS)}",
            port=url,
        )
    return LOG_LEVELS[value]
