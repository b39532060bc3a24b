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
    "_connection": 3,
    "_supervised": 3,
    "_usb": 1,
    "_presence": 1,
    "_pacing": 0,
    "anyio": 2,
    "jumpstarter": 3,
    "_options": 0,
    "_control": 1,
    "_surface": 2,  # what the two front ends share: see LOOP_FREE
    "__init__": 3,  # re-exports layer 3 (Expect)
    "_expect": 3,
    "_console": 3,
    "_cli": 3,
    "__main__": 3,
    "_sim": 3,
}
#: The CLI's sim/demo module fronts the testing fakes for users; nothing else may import them.
IMPORTS_TESTING = {"_sim"}
#: Layer-2 front ends that must never import each other.
FRONT_ENDS = {"_stream", "anyio"}
EVENT_LOOPS = {"trio", "anyio", "trio_util"}
#: Modules above layer 1 that still import no event loop, not even to ask which
#: one runs: the control surface both front ends share, written against a table
#: of loop primitives that each front end fills.
LOOP_FREE = {"_surface"}


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


def check_imports(me: str, found: list[tuple[str, int]]) -> None:
    """Fail on the first import of *found* that module *me* may not make."""
    my_layer = LAYERS.get(me, 99)
    for target, line in found:
        top = target.split(".")[0]
        if my_layer <= 1:
            assert top not in EVENT_LOOPS, f"{me}:{line} imports {target} below layer 2"
        if me in LOOP_FREE:
            assert top not in {*EVENT_LOOPS, "sniffio"}, f"{me}:{line} imports {target}"
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


@pytest.mark.parametrize("path", MODULES, ids=module_name)
def test_imports_point_downward(path: Path) -> None:
    check_imports(module_name(path), imports(path))


@pytest.mark.parametrize("target", ["trio", "trio.lowlevel", "anyio", "trio_util", "sniffio"])
def test_the_shared_surface_may_not_import_an_event_loop(target: str) -> None:
    """A guard for the guard: ``_surface`` sits in layer 2, where the layer rule
    allows event loops, so only ``LOOP_FREE`` keeps it written once for both."""
    with pytest.raises(AssertionError, match=f"_surface:7 imports {target}"):
        check_imports("_surface", [("trioserial._core", 6), (target, 7)])
    check_imports("_surface", [("trioserial._core", 6)])
