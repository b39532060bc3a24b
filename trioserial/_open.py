"""From a port name or URL to an open core (layer 1).

:func:`open_core` blocks (run it off the event loop), but for the opens
:func:`opens_inline` picks out, which never sleep; network ports also open
on the event loop with :func:`open_core_on_loop`.
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import attrs

from ._core import PortCore
from ._errors import UnsupportedURLError
from ._netloop import BLOCKING, Loop, run_blocking
from ._options import OpenOptions
from ._port import DEFAULT_OPEN_OPTIONS, PTY_SLAVE_MAJORS, TtyPort
from ._settings import SerialSettings
from ._url import check_path

__all__ = [
    "UnopenedCore",
    "check_url",
    "open_core",
    "open_core_on_loop",
    "open_request",
    "opens_inline",
    "opens_on_loop",
]

Opener = Callable[[str, SerialSettings], PortCore]

#: scheme -> opener. A device path (no ``scheme://``) always opens a tty.
OPENERS: Final[dict[str, Opener]] = {}

#: scheme -> opener that waits through a :class:`~._netloop.Loop` (network
#: transports): on the event loop in the front ends, with
#: :data:`~._netloop.BLOCKING` in :func:`open_core`.
LOOP_OPENERS: Final[dict[str, Callable[[str, SerialSettings, Loop], Awaitable[PortCore]]]] = {}

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
            f"(such as /dev/ttyUSB0) or one of: {known}",
            port=url,
        )
    if sep:
        check = URL_CHECKS.get(scheme.lower())
        if check is not None:
            check(url)
    return url


def open_request(
    port: object, arguments: Mapping[str, Any]
) -> tuple[str, SerialSettings, OpenOptions]:
    """What both front ends' ``open_serial_port(port, **arguments)`` opens: the
    checked URL, the line settings and the open-time options.

    *arguments* are that function's keyword arguments by name (its
    ``locals()``): every :class:`SerialSettings` and :class:`OpenOptions`
    field. The settings are validated first, then the options, then *port*.
    """
    settings = SerialSettings(**{name: arguments[name] for name in _SETTINGS})
    if all(arguments[name] is None for name in _OPTIONS):  # the usual case, and valid
        options = DEFAULT_OPEN_OPTIONS
    else:
        options = OpenOptions(**{name: arguments[name] for name in _OPTIONS})
    return check_url(port), settings, options


_SETTINGS: Final = tuple(attrs.fields_dict(SerialSettings))
_OPTIONS: Final = tuple(attrs.fields_dict(OpenOptions))


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
    return _with_options(OPENERS[scheme.lower()](url, settings), options)


def _with_options(core: PortCore, options: OpenOptions) -> PortCore:
    if options != DEFAULT_OPEN_OPTIONS:
        try:
            core.apply_open_options(options)
        except BaseException:
            core.close()
            raise
    return core


def opens_on_loop(url: str) -> bool:
    """Whether *url* (checked) is a network port, maybe under ``spy://``: the front
    ends open it on the event loop with :func:`open_core_on_loop`."""
    rest = url
    while rest[:6].lower() == "spy://":
        rest = rest[6:]
    scheme, sep, _ = rest.partition("://")
    return bool(sep) and scheme.lower() in LOOP_OPENERS


def opens_inline(url: str) -> bool:
    """Whether the checked *url* names a pty slave under ``/dev``, whose open
    never sleeps: the front ends open it on the event loop, without a thread.

    A pty slave's open, lock and ``tcsetattr`` are a few syscalls that only
    take the pty's own locks. Any other device can sleep in its open (a
    USB-serial driver talks to the adapter; a port still closing waits for
    its ``closing_wait``), and a path elsewhere may be on a file system whose
    lookup blocks, so those go to a thread. Deciding costs one ``lstat`` of
    a path under ``/dev`` (devtmpfs and devpts are in memory). A symlink is
    not followed (it could lead anywhere, and be changed before the open):
    one to a pty (``socat``'s ``link=``, ``/dev/serial/by-id``) opens in a
    thread.
    """
    if not url.startswith("/dev/") or "/.." in url or not sys.platform.startswith("linux"):
        return False
    try:
        info = os.stat(url, follow_symlinks=False)
    except (OSError, ValueError):
        return False  # the thread's open says what is wrong with it
    return stat.S_ISCHR(info.st_mode) and os.major(info.st_rdev) in PTY_SLAVE_MAJORS


async def open_core_on_loop(
    url: str, settings: SerialSettings, options: OpenOptions, loop: Loop
) -> PortCore:
    """:func:`open_core` for a URL :func:`opens_on_loop` accepts, waiting through *loop*.

    Cancellation (through *loop*'s waits): the open ends there, and every
    socket and trace file it made is closed.
    """
    url = check_url(url)
    return _with_options(await _open_on_loop(url, settings, loop), options)


async def _open_on_loop(url: str, settings: SerialSettings, loop: Loop) -> PortCore:
    scheme = url.partition("://")[0].lower()
    if scheme != "spy":
        return await LOOP_OPENERS[scheme](url, settings, loop)
    from . import _spy

    target, tracer = _spy.start_trace(url)
    try:
        inner = await _open_on_loop(target, settings, loop)
    except BaseException:
        tracer.close()
        raise
    return _spy.traced(url, target, tracer, inner)


class UnopenedCore(PortCore):
    """The core of a driver's connection whose open the driver's ``close()`` cut
    short: closed from the start, so its stream is at end of stream, with no fd."""

    transport = "unopened"

    def __init__(self, name: str, settings: SerialSettings) -> None:
        self.name = name
        self.settings = settings

    def fileno(self) -> int:
        return -1

    def read_nowait(self, max_bytes: int) -> bytes:
        raise OSError(errno.EBADF, f"{self.name!r} was never opened")

    def write_nowait(self, data: memoryview) -> int:
        raise OSError(errno.EBADF, f"{self.name!r} was never opened")

    def close(self) -> None:
        pass


# ------------------------------------------------------------ URL schemes
# Each scheme's module is imported when a URL with that scheme is first
# checked or opened: ``import trioserial`` and the open of a device path
# never pay for the telnet machinery or the tracer (``tests/test_lazy_import.py``).


def _check_loop(url: str) -> object:
    from . import _loop

    return _loop.check_loop_url(url)


def _open_loop(url: str, settings: SerialSettings) -> PortCore:
    from . import _loop

    return _loop.open_loop(url, settings)


def _check_socket(url: str) -> object:
    from . import _socket

    return _socket.parse_socket_url(url)


async def _open_socket_on(url: str, settings: SerialSettings, loop: Loop) -> PortCore:
    from . import _socket

    return await _socket.open_socket(url, settings, loop)


def _check_rfc2217(url: str) -> object:
    from . import _rfc2217

    return _rfc2217.Options(url)


async def _open_rfc2217_on(url: str, settings: SerialSettings, loop: Loop) -> PortCore:
    from . import _rfc2217

    return await _rfc2217.open_rfc2217(url, settings, loop)


def _check_alt(url: str) -> object:
    from . import _resolve

    return _resolve.parse_alt_url(url)


def _open_alt(url: str, settings: SerialSettings) -> PortCore:
    from . import _resolve

    return _resolve.open_alt(url, settings)


def _check_hwgrep(url: str) -> object:
    from . import _resolve

    return _resolve.parse_hwgrep_url(url)


def _open_hwgrep(url: str, settings: SerialSettings) -> PortCore:
    from . import _resolve

    return _resolve.open_hwgrep(url, settings)


def _check_spy(url: str) -> None:
    from . import _spy

    _spy.check_nesting(url)
    target, _ = _spy.parse_spy_url(url)
    check_url(target)


def _open_spy(url: str, settings: SerialSettings) -> PortCore:
    from . import _spy

    return _spy.open_spy(url, settings, open_core)


LOOP_OPENERS.update({"socket": _open_socket_on, "rfc2217": _open_rfc2217_on})
OPENERS.update(
    {
        "loop": _open_loop,
        "socket": lambda url, settings: run_blocking(_open_socket_on(url, settings, BLOCKING)),
        "rfc2217": lambda url, settings: run_blocking(_open_rfc2217_on(url, settings, BLOCKING)),
        "alt": _open_alt,
        "hwgrep": _open_hwgrep,
        "spy": _open_spy,
    }
)
URL_CHECKS.update(
    {
        "loop": _check_loop,
        "socket": _check_socket,
        "rfc2217": _check_rfc2217,
        "alt": _check_alt,
        "hwgrep": _check_hwgrep,
        "spy": _check_spy,
    }
)
