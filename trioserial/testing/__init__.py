"""Test your serial code without hardware: pty pairs and fake-device ends."""

from ._pty import PtyDevice as PtyDevice
from ._pty import clog as clog
from ._pty import open_clogged_pty_pair as open_clogged_pty_pair
from ._pty import open_pty_pair as open_pty_pair

__all__ = ["PtyDevice", "clog", "open_clogged_pty_pair", "open_pty_pair"]
