"""Stopping what runs: every step is taken, whatever an earlier one raised.

A disk gone read-only makes the last checkpoint raise; if that skipped closing the store, its
threads (the journal's, aiosqlite's) would keep the process alive after SIGTERM for good.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

Step = tuple[str, Callable[[], Awaitable[object] | object]]


class StopFailed(RuntimeError):
    """One or more steps of a stop raised; every step was still taken. `failures` names them."""

    def __init__(self, failures: list[tuple[str, BaseException]]) -> None:
        super().__init__("; ".join(f"{name} failed ({type(exc).__name__}: {exc})" for name, exc in failures))
        self.failures = failures


async def stop_all(steps: Iterable[Step]) -> None:
    """Takes each step in order, even after one raised; then raises StopFailed naming every failure
    (or, when the stop itself was cancelled or interrupted, that again)."""
    failures: list[tuple[str, BaseException]] = []
    for name, step in steps:
        try:
            result = step()
            if inspect.isawaitable(result):
                await result
        except StopFailed as exc:
            failures.extend(exc.failures)
        except BaseException as exc:
            failures.append((name, exc))
    interrupted = [exc for _, exc in failures if not isinstance(exc, Exception)]
    if interrupted:
        raise interrupted[0]
    if failures:
        raise StopFailed(failures)


async def cancelled(*tasks: asyncio.Task[Any] | None) -> None:
    """Cancels every task given (None: none), then waits for each to end; their cancellation is not
    raised again, any other error of theirs is."""
    running = [task for task in tasks if task is not None]
    for task in running:
        task.cancel()
    for task in running:
        with contextlib.suppress(asyncio.CancelledError):
            await task
