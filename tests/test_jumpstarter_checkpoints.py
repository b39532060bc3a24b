# Jumpstarter's gRPC stubs declare servicer methods abstract that only its Session
# implements; at run time nothing is abstract.
# mypy: disable-error-code="abstract"
"""Every async method of the Jumpstarter driver's connections is a checkpoint.

Checked on anyio's trio backend, where :func:`trio.testing.assert_checkpoints`
can see it; the code under test uses only anyio's portable API.
"""

from __future__ import annotations

import os

import anyio
import pytest
import trio.testing

pytest.importorskip("jumpstarter")

from trioserial.jumpstarter import PySerial


def test_loop_receive_of_a_held_rest_is_a_checkpoint() -> None:
    async def main() -> None:
        async with PySerial(url="loop://").connect() as stream:
            await stream.send(b"abcd")
            with trio.testing.assert_checkpoints():
                assert await stream.receive(2) == b"ab"
            with trio.testing.assert_checkpoints():  # the rest of the item, held in memory
                assert await stream.receive(2) == b"cd"

    anyio.run(main, backend="trio")


def test_loop_send_of_nothing_is_a_checkpoint() -> None:
    async def main() -> None:
        async with PySerial(url="loop://").connect() as stream:
            with trio.testing.assert_checkpoints():
                await stream.send(b"")

    anyio.run(main, backend="trio")


def test_send_eof_after_the_driver_closed_the_port_is_a_checkpoint() -> None:
    async def main() -> None:
        master, slave = os.openpty()
        path = os.ttyname(slave)
        os.close(slave)
        try:
            driver = PySerial(url=path)
            async with driver.connect() as stream:
                driver.close()
                with trio.testing.assert_checkpoints():
                    await stream.send_eof()  # a client leaving after the close: no error
        finally:
            os.close(master)

    anyio.run(main, backend="trio")
