"""Test your serial code without hardware: pty pairs and fake devices."""

from ._consoles import ConsoleCommand as ConsoleCommand
from ._consoles import FakeUBoot as FakeUBoot
from ._consoles import PosixShell as PosixShell
from ._devices import AtModem as AtModem
from ._devices import BootLogDevice as BootLogDevice
from ._devices import EchoDevice as EchoDevice
from ._devices import FakeDevice as FakeDevice
from ._devices import FakeDevicePort as FakeDevicePort
from ._devices import LineShell as LineShell
from ._devices import ShellHandler as ShellHandler
from ._devices import open_fake_device_port as open_fake_device_port
from ._modem import FakeModem as FakeModem
from ._pty import PtyDevice as PtyDevice
from ._pty import clog as clog
from ._pty import open_clogged_pty_pair as open_clogged_pty_pair
from ._pty import open_pty_pair as open_pty_pair

__all__ = [
    "AtModem",
    "BootLogDevice",
    "ConsoleCommand",
    "EchoDevice",
    "FakeDevice",
    "FakeDevicePort",
    "FakeModem",
    "FakeUBoot",
    "LineShell",
    "PosixShell",
    "PtyDevice",
    "ShellHandler",
    "clog",
    "open_clogged_pty_pair",
    "open_fake_device_port",
    "open_pty_pair",
]
