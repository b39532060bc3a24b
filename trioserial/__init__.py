"""Serial ports for Trio: pyserial's reach, Trio's I/O, honest cancellation semantics."""

from typing import TYPE_CHECKING

from ._errors import NotASerialPortError as NotASerialPortError
from ._errors import PortBusyError as PortBusyError
from ._errors import PortNotFoundError as PortNotFoundError
from ._errors import PortPermissionError as PortPermissionError
from ._errors import SerialPortError as SerialPortError
from ._errors import UnsupportedOperationError as UnsupportedOperationError
from ._errors import UnsupportedURLError as UnsupportedURLError
from ._lazy import lazy_attributes as _lazy_attributes
from ._options import RS485Settings as RS485Settings
from ._settings import ModemLines as ModemLines
from ._settings import Parity as Parity
from ._settings import SerialSettings as SerialSettings
from ._settings import SerialStatistics as SerialStatistics
from ._settings import SettingsChanges as SettingsChanges
from ._settings import StopBits as StopBits

if TYPE_CHECKING:
    from ._connection import DriverStream as DriverStream
    from ._driver import PySerial as PySerial
    from ._expect import Expect as Expect
    from ._expect import ExpectBufferFullError as ExpectBufferFullError
    from ._expect import ExpectEOFError as ExpectEOFError
    from ._expect import ExpectError as ExpectError
    from ._expect import ExpectMatch as ExpectMatch
    from ._expect import ExpectTimeoutError as ExpectTimeoutError
    from ._portinfo import AmbiguousPortError as AmbiguousPortError
    from ._portinfo import PortEvent as PortEvent
    from ._portinfo import PortInfo as PortInfo
    from ._ports import list_ports as list_ports
    from ._ports import wait_for_port as wait_for_port
    from ._ports import watch_ports as watch_ports
    from ._portwatch import PortEvents as PortEvents
    from ._server import serve_rfc2217 as serve_rfc2217
    from ._session import Shell as Shell
    from ._session import UBoot as UBoot
    from ._shellproto import DEFAULT_FAILURE_PATTERNS as DEFAULT_FAILURE_PATTERNS
    from ._shellproto import CommandFailedError as CommandFailedError
    from ._shellproto import CommandResult as CommandResult
    from ._shellproto import DeviceFailureError as DeviceFailureError
    from ._stream import AsyncSerial as AsyncSerial
    from ._stream import open_serial_port as open_serial_port
    from ._supervised import DeviceDisconnectedError as DeviceDisconnectedError
    from ._supervised import SupervisedStream as SupervisedStream

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_FAILURE_PATTERNS",
    "AmbiguousPortError",
    "AsyncSerial",
    "CommandFailedError",
    "CommandResult",
    "DeviceDisconnectedError",
    "DeviceFailureError",
    "DriverStream",
    "Expect",
    "ExpectBufferFullError",
    "ExpectEOFError",
    "ExpectError",
    "ExpectMatch",
    "ExpectTimeoutError",
    "ModemLines",
    "NotASerialPortError",
    "Parity",
    "PortBusyError",
    "PortEvent",
    "PortEvents",
    "PortInfo",
    "PortNotFoundError",
    "PortPermissionError",
    "PySerial",
    "RS485Settings",
    "SerialPortError",
    "SerialSettings",
    "SerialStatistics",
    "SettingsChanges",
    "Shell",
    "StopBits",
    "SupervisedStream",
    "UBoot",
    "UnsupportedOperationError",
    "UnsupportedURLError",
    "list_ports",
    "open_serial_port",
    "serve_rfc2217",
    "wait_for_port",
    "watch_ports",
]

#: Public name -> the private module that defines it, imported on first use
#: (PEP 562): a program loads only what it uses (``tests/test_lazy_import.py``),
#: and the anyio front end never loads trio; the names above, for type checkers.
_LAZY = {
    "DriverStream": "_connection",
    "PySerial": "_driver",
    "Expect": "_expect",
    "ExpectBufferFullError": "_expect",
    "ExpectEOFError": "_expect",
    "ExpectError": "_expect",
    "ExpectMatch": "_expect",
    "ExpectTimeoutError": "_expect",
    "AmbiguousPortError": "_portinfo",
    "PortEvent": "_portinfo",
    "PortInfo": "_portinfo",
    "list_ports": "_ports",
    "wait_for_port": "_ports",
    "watch_ports": "_ports",
    "PortEvents": "_portwatch",
    "serve_rfc2217": "_server",
    "Shell": "_session",
    "UBoot": "_session",
    "DEFAULT_FAILURE_PATTERNS": "_shellproto",
    "CommandFailedError": "_shellproto",
    "CommandResult": "_shellproto",
    "DeviceFailureError": "_shellproto",
    "AsyncSerial": "_stream",
    "open_serial_port": "_stream",
    "DeviceDisconnectedError": "_supervised",
    "SupervisedStream": "_supervised",
}


__getattr__, __dir__ = _lazy_attributes(globals(), _LAZY)
