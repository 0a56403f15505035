"""The sandbox's sense of time.

Every date the sandbox hands out or checks (credential start and end, token
lifetimes, propagation delay, Key Vault attributes) is read from one Clock, so
a test can move the whole simulated cloud forward without patching datetime.
"""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any


class SimulatedClock:
    """The rotation's clock on a sandbox world's time: a wait advances the world's
    clock instead of passing, so propagation delays cost no real seconds."""

    def __init__(self, world: Any) -> None:
        self.world = world

    def now(self) -> datetime:
        return self.world.now()

    async def sleep(self, seconds: float) -> None:
        self.world.clock.advance(seconds=seconds)
        await asyncio.sleep(0)


class Clock:
    """Wall-clock time plus an offset, or a frozen instant.

    ``advance`` moves time forward in both modes; ``freeze`` pins it (useful
    for byte-identical snapshots), ``unfreeze`` lets it run again from there.
    """

    def __init__(self, frozen_at: datetime | None = None) -> None:
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        self._frozen_at = _aware(frozen_at) if frozen_at else None

    def now(self) -> datetime:
        with self._lock:
            if self._frozen_at is not None:
                return self._frozen_at
            return datetime.now(UTC) + self._offset

    @property
    def frozen(self) -> bool:
        with self._lock:
            return self._frozen_at is not None

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        step = delta if delta is not None else timedelta(**kwargs)
        if step < timedelta(0):
            raise ValueError("the sandbox clock only moves forward")
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += step
            else:
                self._offset += step
        return self.now()

    def freeze(self, at: datetime | None = None) -> datetime:
        instant = _aware(at) if at else self.now()
        with self._lock:
            self._frozen_at = instant
        return instant

    def unfreeze(self) -> None:
        with self._lock:
            if self._frozen_at is None:
                return
            self._offset = self._frozen_at - datetime.now(UTC)
            self._frozen_at = None


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def iso(value: datetime | None) -> str | None:
    """Graph's date format: UTC with a Z suffix."""
    if value is None:
        return None
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text: str) -> datetime:
    """Parse the ISO 8601 forms Graph clients send (Z suffix, fractions, offsets)."""
    cleaned = text.strip()
    if cleaned.endswith(("Z", "z")):
        cleaned = cleaned[:-1] + "+00:00"
    # Python 3.11 accepts up to 6 fractional digits; Graph and .NET send 7.
    if "." in cleaned:
        head, _, tail = cleaned.partition(".")
        digits = ""
        rest = ""
        for index, char in enumerate(tail):
            if not char.isdigit():
                rest = tail[index:]
                break
            digits += char
        cleaned = f"{head}.{digits[:6].ljust(6, '0')}{rest}" if digits else head + rest
    return _aware(datetime.fromisoformat(cleaned))
