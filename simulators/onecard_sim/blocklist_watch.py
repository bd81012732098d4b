"""A simulated terminal's live blocklist: `TerminalService.WatchBlocklist` through the SDK, applied
to a `BlocklistCopy`, reconnecting with the version held whenever the stream ends (the hub
restarting, or dropping a reader that fell behind), with backoff. A hub without the RPC
(UNIMPLEMENTED) ends the watch: heartbeats and GetConfig keep the list instead. So does a stream
replaced by a newer one of the same terminal (FAILED_PRECONDITION / STREAM_REPLACED: another
client runs as this terminal); reconnecting would take the stream back and the two would never
settle."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

import grpc

from onecard_client import OneCardError, TerminalClient
from onecard_client.blocklist import BlocklistCopy, BlocklistGap

FIRST_BACKOFF_S = 0.2
MAX_BACKOFF_S = 5.0
STREAM_REPLACED = "STREAM_REPLACED"  # ErrorInfo reason: another stream of this terminal took over


class BlocklistWatch:
    def __init__(self, client: TerminalClient, on_change: Callable[[BlocklistCopy], None]) -> None:
        self.client = client
        self.copy = BlocklistCopy()
        self.reconnects = 0
        self.replaced = False  # the watch ended: a newer stream of this terminal replaced it
        self._on_change = on_change
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self, name: str) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name=name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _run(self) -> None:
        backoff = FIRST_BACKOFF_S
        while True:
            try:
                async for message in self.client.watch_blocklist(self.copy.version):
                    self.copy.apply(message)
                    self._on_change(self.copy)
                    backoff = FIRST_BACKOFF_S
            except BlocklistGap:
                self.copy = BlocklistCopy()  # start over from a snapshot
            except OneCardError as error:
                if error.reason == STREAM_REPLACED:
                    self.replaced = True
                    return
                if error.code == grpc.StatusCode.UNIMPLEMENTED:
                    return
            self.reconnects += 1
            await asyncio.sleep(backoff)
            backoff = min(backoff * 2, MAX_BACKOFF_S)
