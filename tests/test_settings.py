from __future__ import annotations

from typing import Any

import pytest
import serial

from trioserial import Parity, SerialSettings, StopBits


def test_defaults_are_115200_8n1_exclusive() -> None:
    s = SerialSettings()
    assert s.framing == "115200 8N1"
    assert s.exclusive is True
    assert (s.xonxoff, s.rtscts, s.dsrdtr) == (False, False, False)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("N", Parity.NONE),
        ("e", Parity.EVEN),
        ("odd", Parity.ODD),
        ("MARK", Parity.MARK),
        (serial.PARITY_SPACE, Parity.SPACE),
        (Parity.EVEN, Parity.EVEN),
    ],
)
def test_parity_accepts_letters_names_and_pyserial_constants(given: str, expected: Parity) -> None:
    assert SerialSettings(parity=given).parity is expected


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (1, StopBits.ONE),
        (1.5, StopBits.ONE_POINT_FIVE),
        (serial.STOPBITS_TWO, StopBits.TWO),
        (StopBits.TWO, StopBits.TWO),
    ],
)
def test_stopbits(given: float, expected: StopBits) -> None:
    assert SerialSettings(stopbits=given).stopbits is expected


def test_frozen_and_replace_validates() -> None:
    s = SerialSettings()
    with pytest.raises(AttributeError):
        s.baudrate = 9600  # type: ignore[misc]
    assert s.replace(baudrate=9600).baudrate == 9600
    assert s.baudrate == 115200
    with pytest.raises(ValueError, match="bytesize must be 5, 6, 7 or 8, got 9"):
        s.replace(bytesize=9)


@pytest.mark.parametrize(
    ("changes", "error", "message"),
    [
        ({"baudrate": 0}, ValueError, r"baudrate must be between 1 and \d+, got 0"),
        ({"baudrate": -9600}, ValueError, "got -9600"),
        ({"baudrate": 2**31}, ValueError, "baudrate must be between"),
        ({"baudrate": "9600"}, TypeError, "baudrate must be an int, got '9600'"),
        ({"baudrate": 9600.0}, TypeError, "baudrate must be an int, got 9600.0"),
        ({"baudrate": True}, TypeError, "baudrate must be an int, got True"),
        ({"bytesize": 4}, ValueError, "bytesize must be 5, 6, 7 or 8, got 4"),
        ({"bytesize": "8"}, TypeError, "bytesize must be an int"),
        ({"parity": "X"}, ValueError, "parity must be one of .* got 'X'"),
        ({"parity": None}, TypeError, "parity must be one of .* got None"),
        ({"stopbits": 3}, ValueError, "stopbits must be 1, 1.5 or 2, got 3"),
        ({"stopbits": "1"}, TypeError, "stopbits must be 1, 1.5 or 2, got '1'"),
        ({"xonxoff": 1}, TypeError, "xonxoff must be True or False, got 1"),
        ({"rtscts": "yes"}, TypeError, "rtscts must be True or False, got 'yes'"),
        ({"dsrdtr": None}, TypeError, "dsrdtr must be True or False, got None"),
        ({"exclusive": 0}, TypeError, "exclusive must be True or False, got 0"),
        ({"baud": 9600}, TypeError, "unknown serial setting.* baud; expected baudrate"),
    ],
)
def test_bad_settings_name_the_value_and_what_is_allowed(
    changes: dict[str, Any], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        SerialSettings().replace(**changes)
