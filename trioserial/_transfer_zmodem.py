"""The ZMODEM transfers (layer 1): the X/YMODEM driver (``_transfer.py``) run with ZMODEM machines.

Same loop (:func:`~._transfer._drive`), same primitive table, same file
sources and sinks; only the machines and the receiver's choice of where a
file starts (resume, skip) are ZMODEM's own.
"""

from __future__ import annotations

import os
import pathlib
from collections.abc import Iterable
from typing import IO

from . import _zmodem, _zmodem_receiver
from ._transfer import (
    PART_SUFFIX,
    Primitives,
    ProgressCallback,
    _check_timeout,
    _directory,
    _open_write,
    _reason,
    _receive_files,
    _reporter,
    _send,
    _Sink,
    _sources,
)
from ._transfer_base import Event, FileInfo, FileOffer, TransferFileError, TransferProgress

__all__ = ["zmodem_receive", "zmodem_send"]


def _check_resume(resume: object) -> bool:
    if not isinstance(resume, bool):
        raise TypeError(f"resume must be True or False, got {resume!r}")
    return resume


async def zmodem_send(
    loop: Primitives,
    files: Iterable[object],
    *,
    progress: ProgressCallback | None,
    timeout: float,
    resume: bool,
) -> None:
    sources = _sources(files)
    report = _reporter(progress)
    machine = _zmodem.Sender(timeout=_check_timeout(timeout), resume=_check_resume(resume))
    await _send(loop, machine, sources, report)


async def zmodem_receive(
    loop: Primitives,
    directory: str | os.PathLike[str],
    *,
    progress: ProgressCallback | None,
    timeout: float,
    resume: bool,
) -> list[pathlib.Path]:
    machine = _zmodem_receiver.Receiver(timeout=_check_timeout(timeout))
    resume = _check_resume(resume)
    target = await _directory(loop, directory)
    report = _reporter(progress)

    async def start(event: Event) -> tuple[_Sink, FileInfo] | None:
        assert isinstance(event, FileOffer), event
        info = event.info
        placed = await loop.run_sync(_place, target, info, resume or event.resume)
        if placed is None:
            assert info.size is not None
            report(TransferProgress(info.name, info.size, info.size))
            machine.skip()
            return None
        offset, file = placed
        part = target / (info.name + PART_SUFFIX)
        machine.accept(offset)
        return _Sink(file, str(part), owned=True), info

    return await _receive_files(loop, machine, target, report, start)


def _place(directory: pathlib.Path, info: FileInfo, resume: bool) -> tuple[int, IO[bytes]] | None:
    """Where an offered file starts: (offset, open ``NAME.part``), or ``None`` to skip it.

    With *resume*: a ``NAME`` of the offered size is complete (skip); a
    ``NAME.part`` no longer than the offered size is continued from its end.
    Otherwise ``NAME.part`` is written from the start.
    """
    final = directory / info.name
    part = directory / (info.name + PART_SUFFIX)
    if resume:
        try:
            if info.size is not None and final.stat().st_size == info.size:
                return None
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise TransferFileError(f"cannot read {str(final)!r}: {_reason(exc)}") from exc
        try:
            file = part.open("r+b")
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise TransferFileError(f"cannot write {str(part)!r}: {_reason(exc)}") from exc
        else:
            held = file.seek(0, os.SEEK_END)
            if info.size is None or held <= info.size:
                return held, file
            file.close()
    return 0, _open_write(part)
