"""Wake-up calls for the per-resource reconcilers, safe to make from any thread.

Each resource's reconciler sleeps on its own `Wakeup` until an event concerns it
(an edit of the resource, a child's progress or drift) or its next deadline. Many
calls before it wakes fold into one pass: the reconciler reads the latest state
anyway, so it never works through a backlog of stale events.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field


@dataclass
class Wakeup:
    loop: asyncio.AbstractEventLoop
    event: asyncio.Event = field(default_factory=asyncio.Event)
    #: Something the operator wrote was edited or deleted: the next pass writes every child.
    full: bool = False

    def set(self, full: bool) -> None:
        self.full = self.full or full
        self.event.set()

    def take_full(self) -> bool:
        full, self.full = self.full, False
        self.event.clear()
        return full

    async def wait(self) -> None:
        await self.event.wait()


class Wakeups:
    def __init__(self) -> None:
        self._by_uid: dict[str, Wakeup] = {}

    def register(self, uid: str) -> Wakeup:
        """Called by a reconciler, on the operator's event loop."""
        wakeup = self._by_uid[uid] = Wakeup(asyncio.get_running_loop())
        return wakeup

    def unregister(self, uid: str, wakeup: Wakeup) -> None:
        if self._by_uid.get(uid) is wakeup:
            del self._by_uid[uid]

    def wake(self, uid: str, full: bool = False) -> None:
        """From any thread; a resource without a running reconciler is ignored (it reads all on start)."""
        wakeup = self._by_uid.get(uid)
        if wakeup is not None and not wakeup.loop.is_closed():
            wakeup.loop.call_soon_threadsafe(wakeup.set, full)
