"""Pacing: sending at most ``cps`` characters per second (layer 0, sans-IO).

One validation and one token bucket, shared by :class:`trioserial.PySerial`
and the Jumpstarter driver. The bucket does no I/O and never sleeps: the
caller passes the time from its own loop's clock, sends what :meth:`Pacer.take`
allows, and sleeps for :meth:`Pacer.delay` when it allows nothing (each front
end with its close-aware ``sleep_while_open``, so closing the port wakes a
sender whose next slot is seconds away).
"""

from __future__ import annotations

import math

__all__ = ["Pacer", "check_cps"]


def check_cps(value: object) -> float | None:
    """*value* as characters per second, or ``None`` for "no throttle" (``None`` or 0).

    Raises:
      TypeError: not a number (``True`` is no number here).
      ValueError: negative, infinite or NaN.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"cps must be a number of characters per second or None, got {value!r}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            f"cps must be a finite number >= 0 (0 or None: no throttle), got {value!r}"
        )
    return float(value) if value else None


class Pacer:
    """A token bucket: *cps* characters per second, at most *burst* together.

    *burst* defaults to ``max(1, cps / 100)``, 10 ms worth, so a sender that
    was held up never catches up in a long burst; ``burst=1`` sends one
    character per slot (Jumpstarter's semantics). The bucket starts full:
    the first character goes at once.
    """

    def __init__(self, cps: float, *, burst: int | None = None) -> None:
        self.cps = cps
        self.burst = burst if burst is not None else max(1, int(cps / 100))
        self._tokens = float(self.burst)
        self._last: float | None = None

    def take(self, want: int, now: float) -> int:
        """Spend and return how many of *want* characters may go at time *now*.

        ``0`` means none yet: sleep for :meth:`delay`, then ask again.
        """
        if self._last is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._last) * self.cps)
        self._last = now
        n = min(want, int(self._tokens + 1e-9))
        self._tokens -= n
        return n

    def delay(self) -> float:
        """Seconds from the last :meth:`take` until one more character may go."""
        return max(0.0, (1 - self._tokens) / self.cps)
