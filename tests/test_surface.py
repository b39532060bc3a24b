"""The control surface is written once: both front ends run one code on their own loop table.

What the surface does is tested through each front end (``test_control*.py``,
``test_reconfigure.py``, ``test_anyio.py``, ``test_frontend_errors.py``);
this file keeps it shared: a method copied back into a front end, or a table
that borrows a primitive from the other library, fails here.
"""

from __future__ import annotations

import inspect

import attrs
import pytest

import trioserial
import trioserial.anyio
from trioserial import AsyncSerial
from trioserial._anyio_loop import ANYIO_LOOP, ANYIO_PRIMITIVES
from trioserial._surface import LoopPrimitives, PortSurface
from trioserial._trio_loop import TRIO_LOOP, TRIO_PRIMITIVES
from trioserial.anyio import AnyioSerialStream

FRONT_ENDS = [(AsyncSerial, "trio"), (AnyioSerialStream, "anyio")]

#: Everything but the data path: the sync control members, the control
#: coroutines and closing.
SHARED = [
    "closed",
    "port",
    "transport",
    "settings",
    "fileno",
    "modem_lines",
    "cts",
    "dsr",
    "ri",
    "cd",
    "dtr",
    "rts",
    "break_condition",
    "in_waiting",
    "out_waiting",
    "reset_input_buffer",
    "reset_output_buffer",
    "statistics",
    "sleep_while_open",
    "reconfigure",
    "wait_drained",
    "send_break",
    "wait_modem_change",
    "close",
    "aclose",
    "__repr__",
]


@pytest.mark.parametrize("name", SHARED)
@pytest.mark.parametrize(("front_end", "library"), FRONT_ENDS)
def test_the_control_surface_is_not_written_again(
    front_end: type[PortSurface], library: str, name: str
) -> None:
    assert inspect.getattr_static(front_end, name) is inspect.getattr_static(PortSurface, name)


@pytest.mark.parametrize(("front_end", "library"), FRONT_ENDS)
def test_each_front_end_fills_the_table_from_its_own_library(
    front_end: type[PortSurface], library: str
) -> None:
    table = front_end._loop
    assert isinstance(table, LoopPrimitives)
    network = {"trio": TRIO_LOOP, "anyio": ANYIO_LOOP}[library]
    assert table.network is network  # the network opens' table of the same library
    for field in attrs.fields(LoopPrimitives):
        if field.name in {"network", "shielded"}:
            continue
        primitive = getattr(table, field.name)
        # The library's own, or a thin adapter in that library's table module.
        module = primitive.__module__
        assert module.split(".")[0] == library or module == f"trioserial._{library}_loop", (
            field.name,
            primitive,
        )


def test_one_table_per_library_serves_the_surface_the_expect_loop_and_the_opens() -> None:
    assert AsyncSerial._loop is TRIO_PRIMITIVES
    assert trioserial.Expect._loop.library is TRIO_PRIMITIVES
    assert TRIO_PRIMITIVES.network is TRIO_LOOP
    assert AnyioSerialStream._loop is ANYIO_PRIMITIVES
    assert trioserial.anyio.Expect._loop.library is ANYIO_PRIMITIVES
    assert ANYIO_PRIMITIVES.network is ANYIO_LOOP
