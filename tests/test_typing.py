"""The typed surface: mistakes a type checker must catch before the code runs.

Runs mypy (``--strict``, as the project's own config) on small snippets:
one that must pass, one whose every marked line must be an error.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

api = pytest.importorskip("mypy.api")

GOOD = """
import trioserial
import trioserial.anyio
from trioserial import SettingsChanges

async def trio_port(port: trioserial.AsyncSerial) -> None:
    await port.reconfigure(baudrate=9600, parity="even", stopbits=2, rtscts=True)
    changes: SettingsChanges = {"bytesize": 7, "exclusive": False}
    await port.reconfigure(**changes)

async def anyio_port(port: trioserial.anyio.AnyioSerialStream) -> None:
    await port.reconfigure(baudrate=9600, parity=trioserial.Parity.ODD)

driver = trioserial.PySerial("/dev/ttyUSB0", baudrate=9600, cps=10, xonxoff=True)
"""

BAD = """
import trioserial
import trioserial.anyio

async def trio_port(port: trioserial.AsyncSerial) -> None:
    await port.reconfigure(speed="fast")  # E: unexpected keyword
    await port.reconfigure(baudrate="9600")  # E: wrong type

async def anyio_port(port: trioserial.anyio.AnyioSerialStream) -> None:
    await port.reconfigure(speed="fast")  # E: unexpected keyword

trioserial.PySerial("/dev/ttyUSB0", speed=9600)  # E: unexpected keyword
trioserial.PySerial("/dev/ttyUSB0", rtscts="yes")  # E: wrong type
"""


ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def this_checkout(monkeypatch: pytest.MonkeyPatch) -> None:
    """Check against this checkout's trioserial, whatever is installed."""
    monkeypatch.setenv("MYPYPATH", str(ROOT))


def run_mypy(tmp_path: Path, source: str) -> tuple[str, int]:
    snippet = tmp_path / "snippet.py"
    snippet.write_text(source)
    config = ROOT / "pyproject.toml"
    stdout, stderr, status = api.run(
        [
            "--config-file",
            str(config),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-error-summary",
            str(snippet),
        ]
    )
    return stdout + stderr, status


def test_good_settings_type_check(tmp_path: Path) -> None:
    output, status = run_mypy(tmp_path, GOOD)
    assert status == 0, output


def test_unknown_or_mistyped_settings_fail_type_checking(tmp_path: Path) -> None:
    output, status = run_mypy(tmp_path, BAD)
    assert status == 1, output
    expected = {n for n, line in enumerate(BAD.splitlines(), 1) if "# E:" in line}
    reported = {int(m.group(1)) for m in re.finditer(r"snippet\.py:(\d+): error", output)}
    assert reported == expected, output
