"""Test your serial code without hardware: pty pairs and fake-device ends."""

from ._modem import FakeModem as FakeModem
from ._pty import PtyDevice as PtyDevice
from ._pty import clog as clog
from ._pty import open_clogged_pty_pair as open_clogged_pty_pair
from ._pty import open_pty_pair as open_pty_pair

__all__ = ["FakeModem", "PtyDevice", "clog", "open_clogged_pty_pair", "open_pty_pair"]
