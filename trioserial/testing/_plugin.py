"""The ``trioserial`` pytest plugin: pty pairs and fake devices as fixtures.

Registered through the ``pytest11`` entry point, so installing trioserial
makes these fixtures available; they are async fixtures for pytest-trio
(set ``trio_mode = true`` or mark the tests ``@pytest.mark.trio``):

``serial_pty_pair``
    ``(port, device)`` from :func:`~trioserial.testing.open_pty_pair`.
``serial_device``
    An open :class:`~trioserial.AsyncSerial` whose other end a fake device
    serves. The device is chosen by indirect parametrization
    (``@pytest.mark.parametrize("serial_device", [AtModem()], indirect=True)``)
    or by the ``fake_device`` marker
    (``@pytest.mark.fake_device(BootLogDevice(), baudrate=9600)``, whose
    keyword arguments are port settings); default an
    :class:`~trioserial.testing.EchoDevice`.
``serial_device_factory``
    ``await make(device, **settings)`` for several ports, each with its own
    device.

At teardown every port is closed (each device sees end of stream), every
device task is cancelled and awaited, and every fd is closed, in that order.

When a test fails, the transcript of every :class:`~trioserial.Shell` and
:class:`~trioserial.UBoot` it opened (in its fixtures too) is attached to its
report, one section per session (``trioserial transcript: ...``), as
pytest-embedded does with its per-test logs.

The module imports nothing heavy until a fixture is used, because pytest
loads it in every session of an environment where trioserial is installed.
"""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from trioserial import AsyncSerial
    from trioserial.testing import FakeDevice, PtyDevice

#: What the ``serial_device_factory`` fixture returns.
SerialDeviceFactory = Callable[..., Awaitable["AsyncSerial"]]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fake_device(device, **settings): the fake device (a trioserial.testing.FakeDevice, "
        "or a callable making one) that the serial_device fixture connects to, and the "
        "port settings to open it with",
    )


_SESSIONS_MODULE = "trioserial._shellproto"
_TRANSCRIPTS_BEFORE = pytest.StashKey[int]()


def _opened_so_far() -> int:
    # Looked up, not imported: a test run that never opens a session pays nothing.
    module = sys.modules.get(_SESSIONS_MODULE)
    return module.recent_transcripts()[0] if module is not None else 0


@pytest.hookimpl(wrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Generator[None]:
    item.stash[_TRANSCRIPTS_BEFORE] = _opened_so_far()
    return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    module = sys.modules.get(_SESSIONS_MODULE)
    if report.failed and module is not None and _TRANSCRIPTS_BEFORE in item.stash:
        _, transcripts = module.recent_transcripts(item.stash[_TRANSCRIPTS_BEFORE])
        for transcript in transcripts:
            report.sections.append((f"trioserial transcript: {transcript.name}", transcript.text()))
    return report


def _make_device(spec: Any) -> FakeDevice:
    from trioserial.testing import FakeDevice

    if isinstance(spec, FakeDevice):
        return spec
    if callable(spec):
        made = spec()
        if isinstance(made, FakeDevice):
            return made
        spec = made
    raise TypeError(
        "serial_device needs a trioserial.testing.FakeDevice (or a callable returning one), "
        f"got {spec!r}"
    )


async def _serve(device: FakeDevice, pty: PtyDevice) -> None:
    try:
        await device.run(pty)
    finally:
        pty.hang_up()


@pytest.fixture
async def serial_device_factory() -> AsyncIterator[SerialDeviceFactory]:
    """``await make(device, **settings)``: open a port that *device* serves.

    *device* is a :class:`~trioserial.testing.FakeDevice` (or a callable
    returning one); *settings* go to :func:`~trioserial.open_serial_port`.
    Everything made is closed at teardown.
    """
    import trio

    from trioserial.testing import open_pty_pair

    ports: list[AsyncSerial] = []
    async with trio.open_nursery() as nursery:

        async def make(device: Any = None, **settings: Any) -> AsyncSerial:
            from trioserial.testing import EchoDevice

            fake = _make_device(EchoDevice() if device is None else device)
            port, pty = await open_pty_pair(**settings)
            ports.append(port)
            nursery.start_soon(_serve, fake, pty)
            return port

        try:
            yield make
        finally:
            for port in ports:
                port.close()
            nursery.cancel_scope.cancel()


@pytest.fixture
async def serial_device(
    request: pytest.FixtureRequest, serial_device_factory: SerialDeviceFactory
) -> AsyncSerial:
    """An open port connected to a fake device (see the module docs)."""
    settings: dict[str, Any] = {}
    device: Any = None
    marker = request.node.get_closest_marker("fake_device")
    if marker is not None:
        if len(marker.args) > 1:
            raise TypeError(
                "@pytest.mark.fake_device takes one device and keyword port settings, "
                f"got {len(marker.args)} positional arguments"
            )
        device = marker.args[0] if marker.args else None
        settings = dict(marker.kwargs)
    param = getattr(request, "param", None)
    if param is not None:
        device = param
    return await serial_device_factory(device, **settings)


@pytest.fixture
async def serial_pty_pair() -> AsyncIterator[tuple[AsyncSerial, PtyDevice]]:
    """``(port, device)``: both ends of a fresh pty, closed at teardown."""
    from trioserial.testing import open_pty_pair

    port, device = await open_pty_pair()
    try:
        yield port, device
    finally:
        port.close()
        device.hang_up()
