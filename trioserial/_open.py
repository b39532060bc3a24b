"""From a port name or URL to an open core (layer 1, blocking: run off the event loop)."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Final

from ._core import PortCore
from ._errors import UnsupportedURLError
from ._options import OpenOptions
from ._port import DEFAULT_OPEN_OPTIONS, TtyPort
from ._settings import SerialSettings
from ._url import check_path

__all__ = ["check_url", "open_core"]

Opener = Callable[[str, SerialSettings], PortCore]

#: scheme -> opener. A device path (no ``scheme://``) always opens a tty.
OPENERS: Final[dict[str, Opener]] = {}

#: scheme -> pure URL check (syntax and options), run by :func:`check_url`
#: before any I/O; raises :exc:`~trioserial.UnsupportedURLError`.
URL_CHECKS: Final[dict[str, Callable[[str], object]]] = {}


def check_url(url: object) -> str:
    """Validate *url*'s type and scheme before any I/O; return it as a string."""
    if isinstance(url, os.PathLike):
        url = os.fspath(url)
    if not isinstance(url, str):
        raise TypeError(f"port must be a device path or URL string, got {url!r}")
    if not url:
        raise ValueError("port must be a device path or URL, got ''")
    scheme, sep, _ = url.partition("://")
    if not sep:
        check_path(url)
    if sep and scheme.lower() not in OPENERS:
        known = ", ".join(f"{s}://" for s in sorted(OPENERS)) or "none yet"
        raise UnsupportedURLError(
            f"unsupported URL scheme {scheme!r} in {url!r}; expected a device path "
            f"(such as /dev/ttyUSB0) or one of: {known}"
        )
    if sep:
        check = URL_CHECKS.get(scheme.lower())
        if check is not None:
            check(url)
    return url


def open_core(
    url: str, settings: SerialSettings, options: OpenOptions = DEFAULT_OPEN_OPTIONS
) -> PortCore:
    """Open *url* with *settings* and open-time *options*. Blocking; raises the
    errors :func:`check_url` does, and :class:`~trioserial.SerialPortError`
    subclasses for OS failures."""
    url = check_url(url)
    scheme, sep, _ = url.partition("://")
    if not sep:
        return TtyPort.open(url, settings, options)
    core = OPENERS[scheme.lower()](url, settings)
    if options != DEFAULT_OPEN_OPTIONS:
        try:
            core.apply_open_options(options)
        except BaseException:
            core.close()
            raise
    return core


# ------------------------------------------------------------ URL schemes
# Imported here, after open_core exists: spy:// opens its inner port with it.
from . import _loop, _resolve, _rfc2217, _socket, _spy  # noqa: E402

OPENERS.update(
    {
        "loop": _loop.open_loop,
        "socket": _socket.open_socket,
        "rfc2217": _rfc2217.open_rfc2217,
        "alt": _resolve.open_alt,
        "hwgrep": _resolve.open_hwgrep,
        "spy": lambda url, settings: _spy.open_spy(url, settings, open_core),
    }
)


def _check_spy(url: str) -> None:
    _spy.check_nesting(url)
    target, _ = _spy.parse_spy_url(url)
    check_url(target)


URL_CHECKS.update(
    {
        "loop": _loop.check_loop_url,
        "socket": _socket.parse_socket_url,
        "rfc2217": _rfc2217.Options,
        "alt": _resolve.parse_alt_url,
        "hwgrep": _resolve.parse_hwgrep_url,
        "spy": _check_spy,
    }
)
