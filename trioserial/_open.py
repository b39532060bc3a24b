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

__all__ = ["check_url", "open_core"]

Opener = Callable[[str, SerialSettings], PortCore]

#: scheme -> opener. A device path (no ``scheme://``) always opens a tty.
OPENERS: Final[dict[str, Opener]] = {}


def check_url(url: object) -> str:
    """Validate *url*'s type and scheme before any I/O; return it as a string."""
    if isinstance(url, os.PathLike):
        url = os.fspath(url)
    if not isinstance(url, str):
        raise TypeError(f"port must be a device path or URL string, got {url!r}")
    if not url:
        raise ValueError("port must be a device path or URL, got ''")
    scheme, sep, _ = url.partition("://")
    if sep and scheme.lower() not in OPENERS:
        known = ", ".join(f"{s}://" for s in sorted(OPENERS)) or "none yet"
        raise UnsupportedURLError(
            f"unsupported URL scheme {scheme!r} in {url!r}; expected a device path "
            f"(such as /dev/ttyUSB0) or one of: {known}"
        )
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
