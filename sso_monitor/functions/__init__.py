"""Azure Functions blueprints. function_app.py registers them; each is thin."""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerProcess(Generic[T]):
    """A value built once per worker process, on first use (from the app settings);
    ``reset()`` for tests that change the settings."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None

    def get(self) -> T:
        if self._value is None:
            self._value = self._build()
        return self._value

    def reset(self) -> None:
        self._value = None
