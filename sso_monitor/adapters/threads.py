"""A bounded thread pool per adapter for the blocking SDK calls.

asyncio.to_thread shares the loop's default executor, which on a 2-core
machine has 6 threads: Key Vault reads, token probes and URL probes would
queue behind each other and the check run's concurrency setting would mean
nothing. Each adapter gets its own pool, sized from that setting.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class BlockingPool:
    def __init__(self, workers: int, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix=name)

    async def run(self, call: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(call, *args))

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
