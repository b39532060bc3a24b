"""``import trioserial`` and opening a device path load only what an open needs.

The rest of the package (the driver, Expect, sessions, the RFC 2217 server,
port discovery, and every URL scheme's module) is imported on first use:
``trioserial.__getattr__`` and ``trioserial.anyio.__getattr__`` (PEP 562)
for the public names, ``_open`` for a URL scheme. The anyio front end never
loads trio (nor asyncio, on the trio backend). Each check runs in a fresh
interpreter, so a module imported at the top of a module again (which would
silently undo the saving, see docs/performance.rst, "Opening") fails here.
"""

from __future__ import annotations

import ast
import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

#: Never loaded by ``import trioserial`` nor by opening a device path.
HEAVY = {
    "trioserial._connection",
    "trioserial._driver",
    "trioserial._supervised",
    "trioserial._expect",
    "trioserial._session",
    "trioserial._server",
    "trioserial._ports",
    "trioserial._portwatch",
    "trioserial._portinfo",
    "trioserial._shellproto",
    "trioserial.transfer",
    "trioserial._loop",
    "trioserial._socket",
    "trioserial._rfc2217",
    "trioserial._telnet",
    "trioserial._resolve",
    "trioserial._spy",
    "anyio",
    "trio_util",
}


def run(code: str) -> object:
    """Run *code* in a fresh interpreter; return what it printed, as JSON."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def loaded_after(code: str) -> set[str]:
    found = run(f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))")
    assert isinstance(found, list)
    return HEAVY & set(found)


def test_import_loads_nothing_heavy() -> None:
    assert loaded_after("import trioserial") == set()
    found = run("import sys, json, trioserial\nprint(json.dumps(sorted(sys.modules)))")
    assert isinstance(found, list)
    assert "trio" not in found
    assert "trioserial._stream" not in found


def test_the_anyio_front_end_loads_neither_trio_nor_the_rest() -> None:
    code = """
import os, anyio, trioserial.anyio
master, slave = os.openpty()

async def main():
    port = await trioserial.anyio.open_serial_port(os.ttyname(slave))
    await port.aclose()

anyio.run(main, backend="trio")
"""
    found = run(f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))")
    assert isinstance(found, list)
    assert "trioserial._stream" not in found
    assert "asyncio" not in found  # on the trio backend
    assert HEAVY & set(found) == {"anyio"}
    found = run("import sys, json, trioserial.anyio\nprint(json.dumps(sorted(sys.modules)))")
    assert isinstance(found, list)
    assert "trio" not in found


def test_opening_a_device_path_loads_nothing_heavy() -> None:
    code = """
import os, trio, trioserial
master, slave = os.openpty()

async def main():
    port = await trioserial.open_serial_port(os.ttyname(slave))
    await port.aclose()
    try:
        await trioserial.open_serial_port("/dev/null")  # the worker-thread path
    except trioserial.NotASerialPortError:
        pass

trio.run(main)
"""
    assert loaded_after(code) == set()


def test_the_command_line_loads_each_command_s_modules_when_it_runs() -> None:
    # Every invocation builds the whole parser; `trioserial pipe` must not pay
    # for the console, the driver, discovery, sessions or the fake devices.
    code = "from trioserial._cli import build_parser\nbuild_parser()"
    late = {"trioserial._console", "trioserial._console_zmodem", "trioserial.testing"}
    found = run(f"import sys, json\n{code}\nprint(json.dumps(sorted(sys.modules)))")
    assert isinstance(found, list)
    assert (HEAVY | late) & set(found) == set()


def test_a_url_scheme_loads_its_module_on_first_use() -> None:
    code = """
from trioserial._open import check_url
check_url("loop://")
"""
    assert loaded_after(code) == {"trioserial._loop"}


@pytest.mark.parametrize("public", ["trioserial", "trioserial.anyio"])
def test_every_public_name_resolves_to_its_module_object(public: str) -> None:
    code = f"""
import importlib, json
public = importlib.import_module({public!r})
found = {{}}
for name in public.__all__:
    value = getattr(public, name)
    module = public._LAZY.get(name)
    if module is not None:
        assert value is getattr(importlib.import_module("trioserial." + module), name), name
    found[name] = True
assert set(public.__all__) <= set(dir(public))
print(json.dumps(sorted(found)))
"""
    assert run(code) == sorted(importlib.import_module(public).__all__)


def test_from_import_of_a_lazy_name() -> None:
    assert run("import json\nfrom trioserial import Shell, list_ports\nprint(json.dumps(1))") == 1


def test_unknown_attribute_is_an_attribute_error() -> None:
    code = """
import json, trioserial
try:
    trioserial.NoSuchThing
except AttributeError as exc:
    print(json.dumps(str(exc)))
"""
    assert run(code) == "module 'trioserial' has no attribute 'NoSuchThing'"


@pytest.mark.parametrize("public", ["trioserial", "trioserial.anyio"])
def test_the_lazy_table_is_what_type_checkers_see(public: str) -> None:
    """The names under ``if TYPE_CHECKING:`` are exactly the lazy ones, from the same modules."""
    module = importlib.import_module(public)
    assert module.__file__ is not None
    tree = ast.parse(Path(module.__file__).read_text())
    typed: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for imp in node.body:
                assert isinstance(imp, ast.ImportFrom)
                for alias in imp.names:
                    typed[alias.name] = (imp.module or "").lstrip(".")
    assert typed == module._LAZY
