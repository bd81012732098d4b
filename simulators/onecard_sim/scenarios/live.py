"""Live progress while a scenario runs (rich): taps per second, approvals, declines, errors, p99.

Drawn only when the console is a terminal; in a pipe or a test it stays quiet.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

from rich.console import Console
from rich.live import Live
from rich.markup import escape
from rich.text import Text

from onecard_client.hub_time import HubTime
from onecard_sim.events import APPROVED, OFFLINE_APPROVED, OFFLINE_REFUSED
from onecard_sim.scenarios.collector import ERROR_PREFIX, Collector

__all__ = ["LiveProgress"]

_CST = timezone(timedelta(hours=8))
_REFRESH_S = 0.25


class LiveProgress:
    def __init__(
        self, collector: Collector, hub_time: HubTime, duration_s: float, title: str, console: Console
    ) -> None:
        self.collector = collector
        self.hub_time = hub_time
        self.duration_s = duration_s
        self.title = title
        self.console = console
        self._started = time.monotonic()
        self._samples: deque[tuple[float, int]] = deque(maxlen=8)

    def line(self) -> Text:
        c = self.collector
        now = time.monotonic()
        self._samples.append((now, c.total_taps))
        first_t, first_n = self._samples[0]
        rate = (c.total_taps - first_n) / (now - first_t) if now > first_t else 0.0
        decisions = c.decisions
        approved = decisions[APPROVED]
        offline = decisions[OFFLINE_APPROVED] + decisions[OFFLINE_REFUSED]
        errors = sum(n for name, n in decisions.items() if name.startswith(ERROR_PREFIX))
        declined = sum(decisions.values()) - approved - offline - errors
        clock = datetime.fromtimestamp(self.hub_time.now_ms() / 1000, tz=_CST).strftime("%H:%M")
        elapsed = min(now - self._started, self.duration_s)
        error_text = f"[red]{errors:,} errors[/]" if errors else "0 errors"
        return Text.from_markup(
            f"[bold]{escape(self.title)}[/]\n"
            f"hub {clock} · {elapsed:.0f}/{self.duration_s:g} s · {c.total_taps:,} taps · "
            f"{rate:,.0f} taps/s · "
            f"{approved:,} approved · {declined:,} declined · {offline:,} offline · {error_text} · "
            f"p99 {c.recent_p99():.1f} ms"
        )

    @contextlib.contextmanager
    def showing(self, enabled: bool) -> Iterator[None]:
        """Shows the table while the block runs (when enabled and the console is a terminal)."""
        if not enabled or not self.console.is_terminal:
            yield
            return
        self._started = time.monotonic()
        with Live(self.line(), console=self.console, refresh_per_second=4, transient=True) as live:
            task = asyncio.get_running_loop().create_task(self._refresh(live))
            try:
                yield
            finally:
                task.cancel()

    async def _refresh(self, live: Live) -> None:
        while True:
            await asyncio.sleep(_REFRESH_S)
            live.update(self.line())
