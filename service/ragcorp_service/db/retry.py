"""Retrying a transaction PostgreSQL aborted to break a deadlock or a serialisation conflict.

Writes take their locks in one order (term rows sorted, the corpus row last), which makes
deadlocks rare, not impossible (a retitle locks its old terms, then its new ones). The
transaction that PostgreSQL picks as the victim was rolled back whole, so running it again is
safe; a client never sees a 500 for it.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

import asyncpg

T = TypeVar("T")
RETRYABLE = (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError)
ATTEMPTS = 5


async def retrying(transaction: Callable[[], Awaitable[T]], attempts: int = ATTEMPTS) -> T:
    for attempt in range(attempts):
        try:
            return await transaction()
        except RETRYABLE:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(random.uniform(0, 0.02 * 2**attempt))  # apart, so they do not meet again
    raise AssertionError("unreachable")
