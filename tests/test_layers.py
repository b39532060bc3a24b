"""Imports point downward only (DESIGN.md section 2): checked on the source with ast."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "trioserial"

#: Every module of the package and its layer. A new module must be added here.
LAYERS: dict[str, int] = {
    "_util": 0,
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
    "_stream": 2,
    "_driver": 3,
    "anyio": 2,
    "jumpstarter": 3,
    "_options": 0,
    "_control": 1,
    "_surface": 1,
    "__init__": 3,  # re-exports layer 3 (Expect)
    "_expect": 3,
    "_console": 3,
    "_cli": 3,
    "__main__": 3,
    "_sim": 3,
    # file transfer (issue 14): sans-IO machines, one driver, two thin front ends, the CLI
    "_transfer_base": 0,
    "_xymodem": 0,
    "_transfer": 1,
    "transfer": 2,
    "anyio_transfer": 2,
    "_cli_transfer": 3,
    # ZMODEM (issue 17): frames and machines sans-IO, its driver functions beside X/YMODEM's
    "_zmodem_wire": 0,
    "_zmodem": 0,
    "_zmodem_receiver": 0,
    "_transfer_zmodem": 1,
}
#: The CLI's sim/demo module fronts the testing fakes for users; nothing else may import them.
IMPORTS_TESTING = {"_sim"}
#: Layer-2 front ends that must never import each other.
FRONT_ENDS = {"_stream", "anyio", "transfer", "anyio_transfer"}
EVENT_LOOPS = {"trio", "anyio", "trio_util"}


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
