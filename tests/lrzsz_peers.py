"""lrzsz (``sx rx sb rb sz rz``) on one end of a socat pty pair: the transfer tests' real peers.

socat joins two ptys back to back (a null-modem cable), both raw (``sz``
under socat needs a raw pty: a cooked one eats its control bytes); the code
under test opens end ``a`` by path, as users open a port, and an lrzsz
program gets end ``b`` as its stdin and stdout, as it gets a terminal (its
status lines go to stderr, kept in a log). Processes are killed and reaped
in teardown; readiness is socat's own "starting data transfer loop" line,
never a sleep.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import attrs
import pytest
import trio
from url_servers import stop

LRZSZ = ("sx", "rx", "sb", "rb", "sz", "rz")


@attrs.frozen
class PtyCable:
    """Two ptys joined by socat: ``a`` for the code under test, ``b`` for the peer."""

    a: str
    b: str
    workdir: Path


def need_lrzsz() -> None:
    missing = [tool for tool in ("socat", *LRZSZ) if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"{', '.join(missing)} not installed (bash .ci/run installs socat and lrzsz)")


@contextlib.contextmanager
def open_cable(workdir: Path) -> Iterator[PtyCable]:
    """A socat pty pair linked as ``workdir/a`` and ``workdir/b``, while the block runs."""
    need_lrzsz()
    workdir.mkdir(parents=True, exist_ok=True)
    a, b = workdir / "a", workdir / "b"
    process = subprocess.Popen(
        ["socat", "-d", "-d", f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        start_new_session=True,  # a process group of its own, for stop()
    )
    try:
        assert process.stderr is not None
        for raw in process.stderr:
            if b"starting data transfer loop" in raw:
                break
        else:
            pytest.fail(f"socat exited with {process.wait()} before joining the ptys")
        yield PtyCable(str(a), str(b), workdir)
    finally:
        stop(process)


@pytest.fixture
def pty_cable(tmp_path: Path) -> Iterator[PtyCable]:
    """A socat pty pair (see :func:`open_cable`)."""
    with open_cable(tmp_path / "cable") as cable:
        yield cable


@attrs.define
class Peer:
    process: trio.Process
    log: Path

    async def wait(self, seconds: float = 60) -> int:
        """Its exit status (failing the test with its log if it does not end in time)."""
        with trio.move_on_after(seconds):
            return await self.process.wait()
        pytest.fail(f"{self.process.args!r} did not exit:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.asynccontextmanager
async def lrzsz(cable: PtyCable, *args: str, cwd: Path) -> AsyncIterator[Peer]:
    """Run an lrzsz command on the cable's ``b`` end in *cwd*; killed at the end if running."""
    await trio.Path(cwd).mkdir(parents=True, exist_ok=True)
    # The end stays open here too, as a terminal keeps its tty open: when the
    # last holder of a pty slave closes it, socat reads EIO on the master and
    # may drop what the program wrote last (lrzsz's final ACK).
    fd = os.open(cable.b, os.O_RDWR | os.O_NOCTTY)
    log = cwd.parent / f"{cwd.name}-{args[0]}.log"
    try:
        with log.open("wb") as errors:
            process = await trio.lowlevel.open_process(
                list(args),
                stdin=fd,
                stdout=fd,
                stderr=errors,
                cwd=cwd,
                env={**os.environ, "LC_ALL": "C"},  # its messages in English, for the tests
            )
        try:
            yield Peer(process, log)
        finally:
            if process.returncode is None:
                process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()
    finally:
        os.close(fd)


def write_all(directory: Path, contents: dict[str, bytes]) -> list[Path]:
    """Write each ``name: data`` of *contents* into *directory* (made if missing); their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, data in contents.items():
        path = directory / name
        path.write_bytes(data)
        paths.append(path)
    return paths
