"""trioserial.anyio_transfer on both anyio backends: ours to ours on a pty, lrzsz, cancellation.

Sync tests calling :func:`anyio.run` per backend (see tests/anyio_helpers.py for why).
"""

from __future__ import annotations

import ast
import os
import random
import subprocess
from pathlib import Path

import anyio
import pytest
from anyio_helpers import BACKENDS, pty_pair, run
from lrzsz_peers import open_cable

from trioserial.anyio import open_serial_port
from trioserial.anyio_transfer import (
    TransferCancelledError,
    TransferProgress,
    xmodem_receive,
    xmodem_send,
    ymodem_receive,
    ymodem_send,
)

# Real lrzsz peers and whole transfers: more than the suite's default 20 s
# per-test deadline on a loaded 2-core machine (each test has its own fail_after).
pytestmark = pytest.mark.deadline(180)

FILES = {
    "empty": b"",
    "one": b"1",
    "block": bytes(range(256)) * 4,
    "ends-1a": b"x" + b"\x1a" * 200,
    "random": random.Random(3).randbytes(50_000),
}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_module_never_imports_trio() -> None:
    source = Path(__file__).resolve().parent.parent / "trioserial" / "anyio_transfer.py"
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Import):
            assert all(not a.name.startswith("trio") for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            assert not (node.module or "").startswith("trio")


def test_ymodem_and_xmodem_ours_to_ours(backend: str, tmp_path: Path) -> None:
    async def main() -> None:
        async with pty_pair() as (port, device):
            with anyio.fail_after(30):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(ymodem_send, port, list(FILES.items()))
                    paths = await ymodem_receive(device, tmp_path)
                assert [p.name for p in paths] == list(FILES)
                data = FILES["random"]
                async with anyio.create_task_group() as tg:
                    tg.start_soon(xmodem_send, device, data)
                    assert await xmodem_receive(port, tmp_path / "x", size=len(data)) == len(data)

    run(backend, main)
    for name, data in FILES.items():
        assert (tmp_path / name).read_bytes() == data
    assert (tmp_path / "x").read_bytes() == FILES["random"]


def test_cancel_tells_the_peer_and_the_port_works_after(backend: str, tmp_path: Path) -> None:
    data = random.Random(4).randbytes(100_000)

    async def main() -> None:
        async with pty_pair() as (port, device):
            with anyio.fail_after(30):
                scope = anyio.CancelScope()

                def progress(p: TransferProgress) -> None:
                    if p.done >= 20 * 1024:
                        scope.cancel()

                async def send() -> None:
                    with scope:
                        await ymodem_send(port, [("f", data)], progress=progress)

                got: list[TransferProgress] = []
                async with anyio.create_task_group() as tg:
                    tg.start_soon(send)
                    with pytest.raises(TransferCancelledError):
                        await ymodem_receive(device, tmp_path, progress=got.append)
                assert (tmp_path / "f.part").read_bytes() == data[: got[-1].done]
                async with anyio.create_task_group() as tg:
                    tg.start_soon(ymodem_send, port, [("f", data)])
                    assert await ymodem_receive(device, tmp_path) == [tmp_path / "f"]

    run(backend, main)
    assert (tmp_path / "f").read_bytes() == data


def test_receive_a_batch_from_sb(backend: str, tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    for name, data in FILES.items():
        (src / name).write_bytes(data)
    out = tmp_path / "out"
    out.mkdir()
    with open_cable(tmp_path / "cable") as cable:

        async def main() -> None:
            fd = os.open(cable.b, os.O_RDWR | os.O_NOCTTY)
            try:
                with anyio.fail_after(60):
                    port = await open_serial_port(cable.a)
                    sb = await anyio.open_process(
                        ["sb", *(str(src / n) for n in FILES)],
                        stdin=fd,
                        stdout=fd,
                        stderr=subprocess.DEVNULL,
                    )
                    async with port, sb:
                        await ymodem_receive(port, out)
                        assert await sb.wait() == 0
            finally:
                os.close(fd)

        run(backend, main)
    for name, data in FILES.items():
        assert (out / name).read_bytes() == data
