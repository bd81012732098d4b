"""A real hub for integrators' own tests: in-process, on 127.0.0.1:0, over a freshly seeded campus.

    from onecard_client import TerminalClient
    from onecard_client.testing import hub_for_tests

    async def test_my_pos_pays() -> None:
        async with hub_for_tests() as hub:
            pos = hub.credentials.terminals_of(hub.school_id, "canteen_pos")[0]
            async with TerminalClient(pos.terminal_id, hub.terminal_config(pos.terminal_id)) as client:
                ...

The campus is seeded into a temporary folder (removed on exit) with the same seeding code
`onecard-hub seed` runs; `credentials` holds every card's keys and PIN, so a test can tap
and scan like a reader (`onecard_client.taps`). With `tls=True` the hub serves mutual TLS
from a PKI made for the campus, and the `*_config` methods return configs carrying the
matching client certificate. This module imports the hub (`onecard_hub`), which the rest of
the SDK never does.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from onecard_client._config import ClientConfig, RetryConfig, TLSConfig
from onecard_client.campus import CampusCredentials
from onecard_hub.config import HubConfig
from onecard_hub.domain.clock import Clock, SimulatedClock, parse_instant
from onecard_hub.security.pki import ECARD_APP, init_pki, issue_all
from onecard_hub.seed import SeedOptions, seed_campus
from onecard_hub.server import running_hub

__all__ = ["LUNCH", "HubForTests", "SeedOptions", "hub_for_tests", "small_campus"]

# Tuesday 24 November 2026, 12:00 in Ganzhou: lunch is being served and the gates are open.
LUNCH = "2026-11-24T12:00:00+08:00"


def small_campus(seed: int = 7) -> SeedOptions:
    """One school, 40 students (a few suspended or with a lost card), 2 gates, 2 canteen POS."""
    return SeedOptions(
        schools=1, students=40, gates_per_school=2, pos_per_school=2, anomalies=0.05, seed=seed
    )


@dataclass(frozen=True)
class HubForTests:
    """A running test hub: where it listens, what it was seeded with, and configs to reach it."""

    target: str
    credentials: CampusCredentials
    keys_dir: Path
    pki_dir: Path | None  # None when the hub serves plain text
    clock: Clock  # the hub's clock (a ManualClock passed in can be moved by the test)
    deadline_s: float = 5.0
    retry: RetryConfig = field(default_factory=RetryConfig)

    @property
    def school_id(self) -> str:
        """The first school (the only one of `small_campus()`)."""
        return self.credentials.schools[0]

    @property
    def config(self) -> ClientConfig:
        """Plain text, for any caller: the client names itself in a header (no TLS hub only)."""
        return ClientConfig(target=self.target, deadline_s=self.deadline_s, retry=self.retry)

    def terminal_config(self, terminal_id: str) -> ClientConfig:
        return self._config(
            None if self.pki_dir is None else TLSConfig.for_terminal(self.pki_dir, terminal_id)
        )

    def operator_config(self, operator_id: str) -> ClientConfig:
        return self._config(
            None if self.pki_dir is None else TLSConfig.for_operator(self.pki_dir, operator_id)
        )

    def app_config(self, name: str = ECARD_APP) -> ClientConfig:
        """For `ECardClient`: the e-card app's certificate with TLS."""
        return self._config(None if self.pki_dir is None else TLSConfig.for_app(self.pki_dir, name))

    def _config(self, tls: TLSConfig | None) -> ClientConfig:
        return ClientConfig(target=self.target, deadline_s=self.deadline_s, retry=self.retry, tls=tls)


@asynccontextmanager
async def hub_for_tests(
    *,
    tls: bool = False,
    campus: SeedOptions | None = None,
    clock: Clock | None = None,
    clock_start: str = LUNCH,
    clock_speed: float = 1.0,
    folder: Path | None = None,
    deadline_s: float = 5.0,
) -> AsyncIterator[HubForTests]:
    """Seeds a campus (default `small_campus()`), starts a hub on 127.0.0.1:0 and yields it.

    The hub runs on `clock`, or else on a simulated clock from `clock_start` at
    `clock_speed`. `folder` keeps the database, keys and PKI there (it must be empty or
    new); by default a temporary folder is used and removed afterwards. On exit the hub
    stops gracefully.
    """
    owned = folder is None
    root = (
        Path(await asyncio.to_thread(tempfile.mkdtemp, prefix="onecard-test-")) if folder is None else folder
    )
    try:
        db, keys = root / "hub.db", root / "hub.keys"
        await seed_campus(db, keys, campus or small_campus(), progress=False)
        pki = keys / "pki" if tls else None
        if pki is not None:
            await asyncio.to_thread(_make_pki, pki, keys)
        credentials = await asyncio.to_thread(CampusCredentials.load, keys)
        config = HubConfig(
            db=db,
            keys=keys,
            listen="127.0.0.1:0",
            clock_start=clock_start,
            clock_speed=clock_speed,
            grace_seconds=1.0,
            tls_dir=pki,
        )
        hub_clock = clock if clock is not None else SimulatedClock(parse_instant(clock_start), clock_speed)
        async with running_hub(config, hub_clock) as running:
            yield HubForTests(
                target=running.target,
                credentials=credentials,
                keys_dir=keys,
                pki_dir=pki,
                clock=hub_clock,
                deadline_s=deadline_s,
            )
    finally:
        if owned:
            await asyncio.to_thread(shutil.rmtree, root, True)


def _make_pki(pki: Path, keys: Path) -> None:
    init_pki(pki)
    issue_all(pki, keys)
