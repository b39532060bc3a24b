"""Imports point downward only (DESIGN.md section 2): checked on the source with ast."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "trioserial"

#: Every module of the package and its layer. A new module must be added here.
LAYERS: dict[str, int] = {
    "_util": 0,
    "_lazy": 0,  # PEP 562 attribute loading for the two public front modules
    "_errors": 0,
    "_settings": 0,
    "_core": 1,
    "_termios": 1,
    "_port": 1,
    "_open": 1,
    "_url": 0,
    "_telnet": 0,
    "_loop": 1,
    "_socket": 1,
    "_rfc2217": 1,
    "_resolve": 1,
    "_spy": 1,
    "_netloop": 1,
    "_trio_loop": 2,
    "_open_async": 2,  # both front ends' open, written once: LOOP_FREE
    "_anyio_loop": 2,
    "_stream": 2,
    "_driver": 3,
    "_connection": 3,
    "_supervised": 3,
    "_usb": 1,
    "_presence": 1,
    "_pacing": 0,
    "anyio": 2,
    "jumpstarter": 3,
    "_options": 0,
    "_control": 1,
    "_surface": 2,  # the front ends' shared control surface: LOOP_FREE
    "__init__": 3,
    # Expect: the sans-IO matcher, the loop both front ends share, and the two
    # front ends over any Trio / anyio stream (anyio.py re-exports its own).
    "_matcher": 0,
    "_expect_base": 2,
    "_expect": 2,
    "_anyio_expect": 2,
    "_console": 3,
    "_console_keys": 0,  # key names and EOL choices: plain functions, built into the parser
    "_cli": 3,
    "_cli_list": 3,
    "_cli_console": 3,
    "__main__": 3,
    "_sim": 3,
    "_portinfo": 0,  # finding ports (issue 18): sans-IO values, matching, diffing
    "_uevent": 0,
    "_sysfs": 1,
    "_portwatch": 1,  # written once against a table of loop primitives
    "_ports": 2,
    "_ports_anyio": 2,
    "_telnet_wire": 0,
    "_telnet_server": 0,
    "_server": 3,
    "_cli_serve": 3,
    "_shellproto": 0,
    "_session": 3,
    "_sessioncore": 3,
    "_uboot_load": 3,
    "_cli_run": 3,
    # file transfer (issue 14): sans-IO machines, one driver, two thin front ends, the CLI
    "_transfer_base": 0,
    "_xymodem": 0,
    "_transfer": 1,
    "_transfer_primitives": 1,  # the driver's loop operations, built from a library's table
    "transfer": 2,
    "anyio_transfer": 2,
    "_cli_transfer": 3,
    # ZMODEM (issue 17): frames and machines sans-IO, its driver functions beside X/YMODEM's
    "_zmodem_wire": 0,
    "_zmodem": 0,
    "_zmodem_receiver": 0,
    "_transfer_zmodem": 1,
    "_zmodem_detect": 0,  # the console's sz/rz start detector
    "_console_zmodem": 3,
}
#: The CLI's sim/demo module fronts the testing fakes for users; nothing else may import them.
IMPORTS_TESTING = {"_sim", "_server"}  # _server: serve_rfc2217(FakeDevice()) on a pty
#: Layer-2 front ends that must never import each other.
FRONT_ENDS = {"_stream", "anyio", "transfer", "anyio_transfer"}
EVENT_LOOPS = {"trio", "anyio", "trio_util"}
#: Modules above layer 1 that still import no event loop: they are written once
#: for both front ends (the loops come in as a table of primitives).
LOOP_FREE = {"_matcher", "_expect_base", "_surface", "_open_async"}
#: Modules written for one event-loop library, and the libraries they must not import.
ONE_LIBRARY = {"_expect": {"anyio", "sniffio"}, "_anyio_expect": {"trio", "trio_util"}}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE).with_suffix("")
    return ".".join(rel.parts)


def imports(path: Path) -> list[tuple[str, int]]:
    """(imported module, line) pairs: package-relative names without the leading dot."""
    found: list[tuple[str, int]] = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.append((node.module or "", node.lineno))
            else:
                base = node.module or ""
                parent = module_name(path).split(".")[: -node.level]
                name = ".".join([*parent, base]) if base else ".".join(parent)
                found.append(("trioserial." + name if name else "trioserial", node.lineno))
    return found


MODULES = sorted(p for p in PACKAGE.rglob("*.py") if "testing" not in p.parts)


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_every_module_has_a_layer(path: Path) -> None:
    assert module_name(path) in LAYERS, f"add {module_name(path)} to LAYERS"


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_imports_point_downward(path: Path) -> None:
    me = module_name(path)
    my_layer = LAYERS.get(me, 99)
    for target, line in imports(path):
        top = target.split(".")[0]
        if my_layer <= 1:
            assert top not in EVENT_LOOPS, f"{me}:{line} imports {target} below layer 2"
        if me in LOOP_FREE:
            assert top not in EVENT_LOOPS, f"{me}:{line} imports {target}: it must stay loop-free"
        assert top not in ONE_LIBRARY.get(me, ()), f"{me}:{line} imports the other library"
        if not target.startswith("trioserial."):
            continue
        other = target.removeprefix("trioserial.").split(".")[0]
        if other == "testing":
            if me not in IMPORTS_TESTING:
                raise AssertionError(f"{me}:{line}: the package must not import trioserial.testing")
            continue
        if me in FRONT_ENDS and other in FRONT_ENDS and other != me:
            raise AssertionError(f"{me}:{line}: front ends must not import each other")
        assert LAYERS.get(other, 99) <= my_layer, f"{me}:{line} imports {other} (a higher layer)"


def test_the_loop_rules_name_existing_modules() -> None:
    """A renamed module must not slip out of the loop-free / one-library rules unnoticed."""
    existing = {module_name(path) for path in MODULES}
    assert set(LOOP_FREE) | set(ONE_LIBRARY) <= existing
