"""Waiting for ports to come and go, written once for both front ends (layer 1).

The kernel announces every tty it adds or removes on a
``NETLINK_KOBJECT_UEVENT`` socket; udevd re-announces it once the
``/dev/serial`` links exist. :class:`PortWatch` owns that socket (and, where
netlink is unavailable or a caller waits for a path, an inotify fd on the
directories where device nodes and links appear) behind one epoll fd, so a
front end waits on a single fd. After each wake-up it drains what arrived and,
if a tty may have changed, reads sysfs again; ``_portinfo`` decides what
changed.

The async functions here take a :class:`Primitives` table: the six calls of
an event loop they need. ``_ports`` fills it from Trio, ``_ports_anyio`` from
anyio, and neither repeats the logic. This module imports neither.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import errno
import math
import os
import select
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AbstractContextManager
from typing import Any, Final, Literal, Protocol, TypeVar

import attrs

from ._errors import NotASerialPortError, PortNotFoundError
from ._portinfo import PortEvent, PortInfo, PortQuery, diff_ports, port_sort_key
from ._sysfs import DEV, SYSFS, describe_path, read_ports
from ._uevent import parse_uevent

__all__ = ["PortEvents", "PortWatch", "Primitives", "WatchConfig"]

T = TypeVar("T")

_NETLINK_KOBJECT_UEVENT: Final = 15
#: Multicast groups: 1 = the kernel's own events, 2 = udevd's, after its rules ran.
_GROUP_KERNEL: Final = 1
_GROUP_UDEV: Final = 2
#: Bounded work per wake-up: at most this many datagrams, each at most this long.
_MAX_MESSAGES: Final = 256
_MAX_MESSAGE: Final = 16384
_RECEIVE_BUFFER: Final = 1 << 20

_IN_NONBLOCK: Final = os.O_NONBLOCK
_IN_CLOEXEC: Final = os.O_CLOEXEC
_IN_MASK: Final = (
    0x100  # IN_CREATE
    | 0x200  # IN_DELETE
    | 0x040  # IN_MOVED_FROM
    | 0x080  # IN_MOVED_TO
    | 0x004  # IN_ATTRIB: udev sets a node's owner and mode after creating it
    | 0x01000000  # IN_ONLYDIR
)
#: udevd's control socket: there while udevd runs (and makes /dev/serial links).
UDEVD_CONTROL: Final = "/run/udev/control"
#: How often the last-resort backend reads sysfs again.
POLL_INTERVAL: Final = 1.0

Backend = Literal["auto", "netlink", "inotify", "poll"]
#: Below the dev root: where udev makes the links the inotify fallback watches.
_LINK_DIRS: Final = (("serial",), ("serial", "by-id"), ("serial", "by-path"))


class _CancelScope(Protocol):
    @property
    def cancelled_caught(self) -> bool: ...


@attrs.frozen
class Primitives:
    """What the shared code needs of an event loop (Trio's or anyio's)."""

    wait_readable: Callable[[int], Awaitable[None]]
    notify_closing: Callable[[int], None]
    checkpoint: Callable[[], Awaitable[None]]
    sleep: Callable[[float], Awaitable[None]]
    move_on_after: Callable[[float], AbstractContextManager[_CancelScope]]
    shield: Callable[[], AbstractContextManager[object]]
    run_sync: Callable[[Callable[[], Any]], Awaitable[Any]]


@attrs.frozen(kw_only=True)
class WatchConfig:
    """Where to look and how to wait: tests point it at a fixture tree.

    *backend* ``"auto"`` takes netlink, else inotify, else polling.
    """

    sysfs: str = SYSFS
    dev: str = DEV
    backend: Backend = "auto"


DEFAULT_CONFIG: Final = WatchConfig()


# ------------------------------------------------------------------ sources


def _open_netlink() -> socket.socket | None:
    try:
        sock = socket.socket(
            socket.AF_NETLINK,
            socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
            _NETLINK_KOBJECT_UEVENT,
        )
    except (OSError, AttributeError):
        return None  # no netlink here (some containers, non-Linux)
    try:
        with contextlib.suppress(OSError):  # a bigger buffer is nice, not needed
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, _RECEIVE_BUFFER)
        sock.bind((0, _GROUP_KERNEL | _GROUP_UDEV))
    except OSError:
        sock.close()
        return None
    return sock


class _Inotify:
    """An inotify fd through ctypes (the standard library has no binding)."""

    def __init__(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._add_watch = libc.inotify_add_watch
        self._add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
        self._add_watch.restype = ctypes.c_int
        fd = libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC)
        if fd < 0:
            code = ctypes.get_errno()
            raise OSError(code, os.strerror(code))
        self.fd: int = fd

    def fileno(self) -> int:
        return self.fd

    def watch(self, directory: str) -> bool:
        """Watch *directory* (again: the kernel keeps one watch per directory)."""
        wd: int = self._add_watch(self.fd, os.fsencode(directory), _IN_MASK)
        return wd >= 0

    def drain(self) -> bool:
        """Read what is queued (bounded); whether there was anything."""
        seen = False
        for _ in range(_MAX_MESSAGES):
            try:
                if not os.read(self.fd, _MAX_MESSAGE):
                    break
            except BlockingIOError:
                break
            seen = True
        return seen


def _nearest_existing(directory: str) -> str:
    while directory and not os.path.isdir(directory):
        parent = os.path.dirname(directory)
        if parent == directory:
            break
        directory = parent
    return directory or "/"


class PortWatch:
    """The fds that say "a port may have changed", and the sysfs scan that says what.

    ``fd`` is an epoll fd over the netlink socket and the inotify fd, or
    ``None`` for the polling backend. Sync: the front ends wait on ``fd``
    with their loop, then call :meth:`drain`.
    """

    def __init__(self, config: WatchConfig, *, paths: Iterable[str] = ()) -> None:
        self.config = config
        self.dirty = True
        self.closed = False
        self.backend: Backend = "poll"
        self._netlink: socket.socket | None = None
        self._inotify: _Inotify | None = None
        self._epoll: select.epoll | None = None
        want = config.backend
        dev_root = os.path.join(os.path.abspath(config.dev), "")
        # Where udevd runs, a name under the dev root appears with a uevent (the
        # kernel's for a node, udevd's for a link), and inotify, whose close is
        # slow (see close_but_inotify), is not needed for it. Anywhere else, or
        # without udevd, only inotify sees a symlink appear.
        announced = want in ("auto", "netlink") and os.path.exists(UDEVD_CONTROL)
        self._dirs: list[str] = [
            os.path.dirname(os.path.abspath(p))
            for p in paths
            if not (announced and os.path.abspath(p).startswith(dev_root))
        ]
        try:
            if want in ("auto", "netlink"):
                self._netlink = _open_netlink()
                if self._netlink is None and want == "netlink":
                    raise OSError(errno.EPROTONOSUPPORT, "no NETLINK_KOBJECT_UEVENT socket here")
                if self._netlink is not None:
                    self.backend = "netlink"
            if self._netlink is None and want in ("auto", "inotify"):
                self.backend = "inotify"
                dev = config.dev
                self._dirs += [dev, *(os.path.join(dev, *p) for p in _LINK_DIRS)]
            if self._dirs and want != "poll":
                try:
                    self._inotify = _Inotify()
                except (OSError, AttributeError):
                    if want == "inotify":
                        raise
                    if self.backend == "inotify":
                        self.backend = "poll"
            if self._netlink is not None or self._inotify is not None:
                self._epoll = select.epoll()
                for source in (self._netlink, self._inotify):
                    if source is not None:
                        self._epoll.register(source.fileno(), select.EPOLLIN)
            self._rewatch()
        except BaseException:
            self.close()
            raise

    @property
    def fd(self) -> int | None:
        return None if self._epoll is None else self._epoll.fileno()

    def _rewatch(self) -> None:
        if self._inotify is not None:
            for directory in self._dirs:
                self._inotify.watch(_nearest_existing(directory))

    def drain(self) -> bool:
        """Take in what the fds hold (bounded work); whether ports may have changed."""
        if self._netlink is not None:
            for _ in range(_MAX_MESSAGES):
                try:
                    data = self._netlink.recv(_MAX_MESSAGE)
                except BlockingIOError:
                    break
                except OSError as exc:
                    if exc.errno != errno.ENOBUFS:
                        raise
                    self.dirty = True  # the kernel dropped events: look again
                    continue
                event = parse_uevent(data)
                if event is not None and event.subsystem == "tty":
                    self.dirty = True
        if self._inotify is not None and self._inotify.drain():
            self.dirty = True
            self._rewatch()  # a directory may have appeared (/dev/serial/by-id)
        return self.dirty

    def scan(self) -> list[PortInfo]:
        """The ports now (sysfs reads, about 0.3 ms here); clears :attr:`dirty`."""
        self.dirty = False
        return read_ports(sysfs=self.config.sysfs, dev=self.config.dev)

    def close(self) -> None:
        inotify_fd = self.close_but_inotify()
        if inotify_fd is not None:
            close_inotify(inotify_fd)

    def close_but_inotify(self) -> int | None:
        """Close all but the inotify fd, and hand that one back to be closed.

        Closing an inotify fd that has watches waits for an RCU grace period
        in the kernel (0 to 25 ms measured here), too long for an event loop:
        the async code closes it in a worker thread.
        """
        for source in (self._epoll, self._netlink):
            if source is not None:
                source.close()
        inotify_fd = None if self._inotify is None else self._inotify.fd
        self._epoll = self._netlink = self._inotify = None
        self.closed = True
        return inotify_fd


def close_inotify(fd: int) -> None:
    """``os.close`` of an inotify fd (blocking: see :meth:`PortWatch.close_but_inotify`)."""
    os.close(fd)


async def wait_change(loop: Primitives, watch: PortWatch) -> None:
    """Return once a port may have changed (at once if :attr:`PortWatch.dirty`).

    A checkpoint. A cancellation loses nothing: what was drained is kept as
    ``dirty``, what was not is still queued in the kernel.
    """
    fd = watch.fd
    if fd is None:
        await loop.sleep(POLL_INTERVAL)
        watch.dirty = True
        return
    while True:
        await loop.wait_readable(fd)
        if watch.drain():
            return


@contextlib.asynccontextmanager
async def _closing(loop: Primitives, watch: PortWatch) -> AsyncIterator[PortWatch]:
    """Close *watch* at the end, even when cancelled; the inotify fd off the loop."""
    try:
        yield watch
    finally:
        fd = watch.fd
        if fd is not None:
            loop.notify_closing(fd)
        inotify_fd = watch.close_but_inotify()
        if inotify_fd is not None:
            with loop.shield():
                await loop.run_sync(lambda: close_inotify(inotify_fd))


# ------------------------------------------------------------- the three calls


async def list_ports(loop: Primitives, config: WatchConfig) -> list[PortInfo]:
    return list(await loop.run_sync(lambda: read_ports(sysfs=config.sysfs, dev=config.dev)))


def check_timeout(timeout: object) -> float:
    if timeout is None:
        return math.inf
    if isinstance(timeout, bool) or not isinstance(timeout, int | float):
        raise TypeError(f"timeout must be a number of seconds or None, got {timeout!r}")
    if math.isnan(timeout) or timeout < 0:
        raise ValueError(f"timeout must be >= 0 seconds (None: no limit), got {timeout!r}")
    return float(timeout)


def _candidates(watch: PortWatch, query: PortQuery) -> tuple[list[PortInfo], str | None]:
    ports = watch.scan()
    if query.path is None:
        return ports, None
    if not os.path.exists(query.path):
        return ports, None
    target = os.path.realpath(query.path)
    if all(os.path.realpath(p.device) != target for p in ports):
        named = describe_path(query.path, sysfs=watch.config.sysfs, dev=watch.config.dev)
        if named is None:
            raise NotASerialPortError(
                f"{query.path!r} is not a serial port (not a tty device)", port=query.path
            )
        ports.append(named)
    return ports, target


async def wait_for_port(
    loop: Primitives, query: PortQuery, *, first: bool, timeout: object, config: WatchConfig
) -> PortInfo:
    """The port *query* names, once it is there. See ``trioserial.wait_for_port``."""
    if not isinstance(first, bool):
        raise TypeError(f"first must be True or False, got {first!r}")
    seconds = check_timeout(timeout)
    paths = [query.path] if query.path is not None else []
    watch = PortWatch(config, paths=paths)
    async with _closing(loop, watch):
        found = query.choose(*_candidates(watch, query), first=first)
        if found is not None:
            await loop.checkpoint()
            return found
        with loop.move_on_after(seconds):
            while True:
                await wait_change(loop, watch)
                found = query.choose(*_candidates(watch, query), first=first)
                if found is not None:
                    return found
    within = "" if math.isinf(seconds) else f" within {seconds:g} s"
    raise PortNotFoundError(
        f"no serial port matching {query.describe()} appeared{within}",
        port=query.path or query.describe(),
        errno=errno.ETIMEDOUT,
    )


class PortEvents:
    """The ports coming and going, from ``watch_ports()``: ``async for event in events``.

    Each item is a :class:`~trioserial.PortEvent`. :attr:`ports` is the set
    of ports as of the events handed out so far: before the first, the ports
    present when the watch began (taken after it started listening, so no
    change falls in between).

    Cancellation: a cancelled ``__anext__`` has handed out nothing; the next
    call reports every change since the previous event, in order.
    """

    def __init__(self, loop: Primitives, watch: PortWatch) -> None:
        self._loop = loop
        self._watch = watch
        self._pending: collections.deque[PortEvent] = collections.deque()
        self._scanned = {p.device: p for p in watch.scan()}
        self._delivered = dict(self._scanned)

    @property
    def ports(self) -> list[PortInfo]:
        """The ports present after the last event handed out, in device-name order."""
        return list(self._delivered.values())

    @property
    def backend(self) -> str:
        """Which source drives the events, ``"netlink"``, ``"inotify"`` or ``"poll"``."""
        return self._watch.backend

    def __aiter__(self) -> PortEvents:
        return self

    async def __anext__(self) -> PortEvent:
        if self._watch.closed:
            raise StopAsyncIteration  # the watch_ports block has ended
        if self._pending:
            await self._loop.checkpoint()
        while not self._pending:
            await wait_change(self._loop, self._watch)
            new = {p.device: p for p in self._watch.scan()}
            self._pending.extend(diff_ports(self._scanned, new))
            self._scanned = new
        event = self._pending.popleft()
        if event.kind == "added":
            self._delivered[event.port.device] = event.port
        else:
            self._delivered.pop(event.port.device, None)
        self._delivered = dict(sorted(self._delivered.items(), key=lambda kv: port_sort_key(kv[0])))
        return event


@contextlib.asynccontextmanager
async def watch_ports(loop: Primitives, config: WatchConfig) -> AsyncIterator[PortEvents]:
    watch = PortWatch(config)
    async with _closing(loop, watch):
        events = PortEvents(loop, watch)
        await loop.checkpoint()
        yield events
