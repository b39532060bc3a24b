"""``alt://`` and ``hwgrep://``: URLs that name a local device (layer 1, blocking).

Both resolve to a device path and open it natively as a tty
(:class:`~trioserial._port.TtyPort`); the openers run in a worker thread,
so scanning ``/sys`` for ``hwgrep://`` never stalls the event loop.
Symlinks such as ``/dev/serial/by-id/...`` need no URL: they are paths.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Final

import serial

from ._errors import PortNotFoundError, SerialPortError, UnsupportedURLError
from ._port import TtyPort
from ._settings import SerialSettings
from ._url import check_path, is_decimal, parse_options, split_url

#: Where udev keeps the stable names of USB serial adapters.
BY_ID_DIR: Final = "/dev/serial/by-id"
#: Names by physical connection (bus and USB port): stable for one socket,
#: and what tells apart identical adapters that have no serial number.
BY_PATH_DIR: Final = "/dev/serial/by-path"


def udev_links(directory: str | os.PathLike[str] = BY_ID_DIR) -> dict[str, str]:
    """Device path -> its udev link in *directory* (the first by name).

    *directory* is ``/dev/serial/by-id`` (stable names of adapters) by
    default, or ``/dev/serial/by-path`` (names of the USB sockets).

    Empty when the directory is absent (udev creates it only while a USB
    serial device is plugged in). A few ``readlink`` calls: cheap, but file
    system work, so event-loop callers use a worker thread.
    """
    links: dict[str, str] = {}
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except OSError:
        return links
    for entry in entries:
        links.setdefault(os.path.realpath(entry.path), entry.path)
    return links


def stable_path(path: str, directory: str | os.PathLike[str] = BY_ID_DIR) -> str:
    """A ``/dev/serial/by-id`` link to the same device as *path*, or *path* itself.

    URLs, and paths already inside *directory*, come back unchanged.
    """
    if "://" in path:
        return path
    if os.path.realpath(os.path.dirname(path) or ".") == os.path.realpath(directory):
        return path
    return udev_links(directory).get(os.path.realpath(path), path)


__all__ = ["open_alt", "open_hwgrep"]

#: ``(device, description, hwid)`` triples, as ``serial.tools.list_ports.grep`` yields.
Grep = Callable[[str], Iterable[Sequence[str]]]


def parse_alt_url(url: str) -> str:
    """The device path of ``alt://PATH[?class=NAME]``; the class is checked, then ignored.

    pyserial uses *NAME* to pick another implementation of its ``Serial``
    (``PosixPollSerial``, ``VTIMESerial``); ours is a non-blocking tty with
    VMIN=1 that needs neither trick, so any of pyserial's classes is accepted.
    """
    _, path, query = split_url(url)
    options = parse_options(url, query, values=("class",))
    name = options.get("class")
    if name is not None:
        cls = getattr(serial, name, None)
        if not (isinstance(cls, type) and issubclass(cls, serial.SerialBase)):
            raise UnsupportedURLError(
                f"unknown class {name!r} in {url!r}: expected a pyserial Serial class "
                f"such as Serial or PosixPollSerial",
                port=url,
            )
    if not path:
        raise UnsupportedURLError(f"missing device path in {url!r}: expected alt://PATH", port=url)
    check_path(path, url)
    return path


def parse_hwgrep_url(url: str) -> tuple[re.Pattern[str], int, bool]:
    """``hwgrep://REGEXP[&skip_busy][&n=N]`` -> (pattern, index from 0, skip_busy)."""
    _, _, rest = url.partition("://")
    regexp, _, query = rest.partition("&")
    if not regexp:
        raise UnsupportedURLError(
            f"missing regular expression in {url!r}: expected hwgrep://REGEXP",
            port=url,
        )
    try:
        pattern = re.compile(regexp, re.IGNORECASE)
    except re.error as exc:
        raise UnsupportedURLError(
            f"malformed regular expression {regexp!r} in {url!r}: {exc}",
            port=url,
        ) from None
    options = parse_options(url, query, flags=("skip_busy",), values=("n",))
    n_text = options.get("n")
    if n_text is None:
        index = 0
    elif is_decimal(n_text) and int(n_text) >= 1:
        index = int(n_text) - 1
    else:
        raise UnsupportedURLError(
            f"malformed option n={n_text!r} in {url!r}: expected a number >= 1, "
            "1 being the first match",
            port=url,
        )
    return pattern, index, "skip_busy" in options


def _list_ports_grep(regexp: str) -> Iterable[Sequence[str]]:
    from serial.tools import list_ports

    return [(p.device, p.description, p.hwid) for p in list_ports.grep(regexp)]


def open_alt(url: str, settings: SerialSettings) -> TtyPort:
    """Open ``alt://PATH[?class=NAME]`` as the tty *PATH*. Blocking."""
    core = TtyPort.open(parse_alt_url(url), settings)
    core.name = url
    return core


def open_hwgrep(url: str, settings: SerialSettings, *, grep: Grep = _list_ports_grep) -> TtyPort:
    """Open the first (or *n*-th) local port whose name, description or hardware id
    matches, as pyserial's ``hwgrep://``. With ``skip_busy``, ports that fail to
    open (locked by another process, no permission) are passed over. Blocking.

    *grep* is the port search (``serial.tools.list_ports.grep``); tests pass
    their own, since a pty never appears in the system's port list.
    """
    pattern, index, skip_busy = parse_hwgrep_url(url)
    matches = sorted(tuple(found) for found in grep(pattern.pattern))
    skipped: list[str] = []
    for device, *_ in matches:
        if not skip_busy:
            if index:
                index -= 1
                continue
            core = TtyPort.open(device, settings)
        else:
            try:
                core = TtyPort.open(device, settings)
            except SerialPortError as exc:
                skipped.append(str(exc))
                continue
            if index:
                core.close()
                index -= 1
                continue
        core.name = url
        return core
    found = ", ".join(m[0] for m in matches) or "none"
    detail = f"; skipped {'; '.join(skipped)}" if skipped else ""
    raise PortNotFoundError(
        f"cannot open {url!r}: not enough ports match {pattern.pattern!r} "
        f"(matching: {found}{detail})",
        port=url,
    )
