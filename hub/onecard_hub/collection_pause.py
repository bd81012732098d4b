"""Pausing the garbage collector's automatic collections while a burst of short-lived objects is in
flight (a loss report written to 20,000 blocklist streams).

Each stream write keeps a dozen objects alive until gRPC has sent it (the waiting future, the
generators' send objects, gRPC's operations). With thousands of writes in flight at once, every
automatic collection of the young generations finds them all still alive, walks them and promotes
them, and the next older collection walks them again: measured with 20,000 streams, collections
took about 40% of the hub's CPU during a fan-out. While paused, objects are still freed by reference
counting the moment they are let go; only cycles wait. The hub collects the young generations every
second anyway (`server.keep_collections_short`, whose explicit collections run paused or not), so
nothing waits longer than it would otherwise.

A pause lasts `seconds` from the last call; automatic collections come back after it, unless
something else had turned them off before the pause began (then they are left as they were).
"""

from __future__ import annotations

import asyncio
import gc


class CollectionPause:
    def __init__(self) -> None:
        self._resume: asyncio.TimerHandle | None = None

    @property
    def paused(self) -> bool:
        return self._resume is not None

    def pause(self, seconds: float) -> None:
        """Pauses automatic collections for `seconds` from now (extends a pause under way). Needs a
        running event loop (the resumption is a timer on it); without one, does nothing."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        if self._resume is not None:
            self._resume.cancel()
        elif gc.isenabled():
            gc.disable()
        else:
            return  # turned off by someone else: theirs to turn on
        self._resume = loop.call_later(seconds, self.resume)

    def resume(self) -> None:
        """Automatic collections back now, if this paused them."""
        if self._resume is not None:
            self._resume.cancel()
            self._resume = None
            gc.enable()
