"""Percentiles and a time-bounded load generator on loopback."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Latency:
    p50_ms: float
    p95_ms: float
    p99_ms: float
    requests: int
    per_second: float
    errors: int = 0

    @classmethod
    def of(cls, seconds: Sequence[float], elapsed: float, errors: int = 0) -> Latency:
        ms = np.asarray(seconds) * 1000 if seconds else np.asarray([float("nan")])
        p50, p95, p99 = (float(np.percentile(ms, q)) for q in (50, 95, 99))
        return cls(round(p50, 1), round(p95, 1), round(p99, 1), len(seconds), round(len(seconds) / elapsed, 1), errors)


async def load(call: Callable[[int], Awaitable[object]], *, clients: int, seconds: float, warmup: int = 5) -> Latency:
    """`clients` loops calling `call(i)` back to back until `seconds` pass; each call timed."""
    for i in range(warmup):
        await call(i)
    counter = itertools.count()
    timings: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            try:
                await call(next(counter))
            except Exception:
                errors += 1
                continue
            timings.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return Latency.of(timings, time.perf_counter() - started, errors)
