from __future__ import annotations

import trioserial
import trioserial.testing

DOCUMENTED = {
    "AsyncSerial",
    "ModemLines",
    "NotASerialPortError",
    "Parity",
    "PortBusyError",
    "PortNotFoundError",
    "PortPermissionError",
    "SerialPortError",
    "SerialSettings",
    "SerialStatistics",
    "StopBits",
    "UnsupportedOperationError",
    "UnsupportedURLError",
    "open_serial_port",
    "DriverStream",
    "PySerial",
    "SupervisedStream",
    "RS485Settings",
    # expect (issue 7)
    "Expect",
    "ExpectBufferFullError",
    "ExpectEOFError",
    "ExpectError",
    "ExpectMatch",
    "ExpectTimeoutError",
    # device sessions (issue 15)
    "CommandFailedError",
    "CommandResult",
    "DEFAULT_FAILURE_PATTERNS",
    "DeviceFailureError",
    "Shell",
    "UBoot",
}


def test_all_is_the_documented_surface() -> None:
    assert set(trioserial.__all__) == DOCUMENTED
    for name in trioserial.__all__:
        if name.isupper():  # a constant (DEFAULT_FAILURE_PATTERNS) has no __module__
            continue
        assert getattr(trioserial, name).__module__.startswith("trioserial")


def test_testing_surface() -> None:
    assert set(trioserial.testing.__all__) == {
        "FakeModem",
        "PtyDevice",
        "clog",
        "open_clogged_pty_pair",
        "open_pty_pair",
        # fake devices (issue 7)
        "AtModem",
        "BootLogDevice",
        "EchoDevice",
        "FakeDevice",
        "FakeDevicePort",
        "LineShell",
        "ShellHandler",
        "open_fake_device_port",
        # fake consoles (issue 15)
        "ConsoleCommand",
        "FakeUBoot",
        "PosixShell",
    }


def test_errors_are_oserrors_for_pyserial_and_jumpstarter_code() -> None:
    import serial

    for name in ("PortNotFoundError", "PortBusyError", "PortPermissionError"):
        cls = getattr(trioserial, name)
        assert issubclass(cls, serial.SerialException)
        assert issubclass(cls, OSError)
