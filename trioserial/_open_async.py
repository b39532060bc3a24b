"""Both front ends' open, written once against their table of loop primitives (layer 2).

Three ways to open, by what the open can wait for (see ``docs/performance.rst``,
"Opening"):

* a network port (``socket://``, ``rfc2217://``, also under ``spy://``)
  connects and negotiates on the event loop, through the loop's waits;
* a pty slave under ``/dev`` (:func:`~._open.opens_inline`) opens on the
  event loop, in one step: its open never sleeps;
* anything else can sleep in the kernel, so it opens in a worker thread.

No trio, no anyio imports (``tests/test_layers.py``).
"""

from __future__ import annotations

from collections.abc import Callable

from ._core import PortCore
from ._open import open_core, open_core_on_loop, opens_inline, opens_on_loop
from ._options import OpenOptions
from ._port import TtyPort
from ._settings import SerialSettings
from ._surface import LoopPrimitives

__all__ = ["open_core_async"]


async def open_core_async(
    url: str,
    settings: SerialSettings,
    options: OpenOptions,
    loop: LoopPrimitives,
    *,
    opener: Callable[[str, SerialSettings, OpenOptions], PortCore] | None = None,
) -> PortCore:
    """Open the checked *url* on *loop*'s event loop. Always a checkpoint.

    *opener* (default :func:`~._open.open_core`) opens a device, inline or in
    the thread; the driver passes its own.

    Cancellation: a network open ends at once, its socket closed. A pty's
    open is not started once a cancellation has come; one that comes by the
    checkpoint after it closes the port again. A thread's open runs to its
    end; if a cancellation came meanwhile, the port is closed again before
    it is raised. Either way no fd or lock is left behind.
    """
    if opens_on_loop(url):
        return await open_core_on_loop(url, settings, options, loop.network)
    if not opens_inline(url):
        open_ = open_core if opener is None else opener
        return await loop.open_in_thread(lambda: open_(url, settings, options))
    await loop.checkpoint_if_cancelled()
    core: PortCore
    if opener is None:
        core = TtyPort.open(url, settings, options)  # open_core's, without checking url again
    else:
        core = opener(url, settings, options)
    try:
        # Not a shielded checkpoint: anyio's on asyncio enters a cancel scope,
        # which costs more than the open (docs/performance.rst, "Opening").
        await loop.checkpoint()
    except BaseException:
        core.close()
        raise
    return core
