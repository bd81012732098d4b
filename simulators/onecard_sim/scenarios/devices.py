"""The simulated campus of a scenario: its students, gate readers, canteen POS, library desks and exam
tablets (from `onecard_sim`), wired to one event sink, and the offline fault that `offline-canteen`
plays on a share of the POS."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onecard_client import ClientConfig, ECardClient, TLSConfig
from onecard_client.campus import CampusCredentials, TerminalInfo
from onecard_client.hub_time import HubTime
from onecard_sim.events import TapEvent, UploadEvent
from onecard_sim.exam_tablet import ExamTablet, ExamTabletFleet
from onecard_sim.fleet import Fleet
from onecard_sim.gate import GateFleet, GateReader
from onecard_sim.library_desk import LibraryDesk, LibraryFleet
from onecard_sim.population import ECardApp, Population, wallclock_floor
from onecard_sim.pos import CanteenFleet, CanteenPos
from onecard_sim.scenarios.catalog import OfflinePlan, ScenarioSpec
from onecard_sim.scenarios.collector import Collector

__all__ = ["APP_NAME", "CampusDevices", "ForwardSink", "build_devices", "offline_fault", "settle_offline"]

APP_NAME = "ecard-app"  # the e-card app's certificate in the PKI folder


class ForwardSink:
    """An EventSink that forwards to the collector once it is set (when the stretch starts), and
    every tap also to the `watchers` (a scenario's episodes)."""

    def __init__(self) -> None:
        self.target: Collector | None = None
        self.watchers: list[Callable[[TapEvent], None]] = []

    def tap(self, event: TapEvent) -> None:
        if self.target is not None:
            self.target.tap(event)
            for watch in self.watchers:
                watch(event)

    def upload(self, event: UploadEvent) -> None:
        if self.target is not None:
            self.target.upload(event)


@dataclass
class CampusDevices:
    population: Population
    minter: ECardClient
    sink: ForwardSink
    gates: GateFleet | None = None
    canteens: CanteenFleet | None = None
    libraries: LibraryFleet | None = None
    tablets: ExamTabletFleet | None = None
    all: list[Fleet[Any]] = field(default_factory=list)

    @property
    def hub_time(self) -> HubTime:
        """The hub's clock as the first terminal synced it (from its configuration download)."""
        return self.all[0].terminals[0].hub_time

    async def start(self) -> None:
        await asyncio.gather(*(fleet.start() for fleet in self.all))

    async def stop(self) -> None:
        await asyncio.gather(*(fleet.stop() for fleet in self.all), return_exceptions=True)
        await self.minter.close()


def build_devices(
    spec: ScenarioSpec,
    campus: CampusCredentials,
    *,
    target: str,
    keys: Path,
    pki: Path | None,
    seed: int,
    fresh_hub: bool,
) -> CampusDevices:
    """Every gate and POS of the campus the scenario uses. Against a hub that saw earlier runs
    (`fresh_hub` False), chip counters and offline serials start above anything sent before."""
    population = Population.load(
        keys, None, seed, atc_floor=0 if fresh_hub else wallclock_floor(), campus=campus
    )
    app_tls = TLSConfig.for_app(pki, APP_NAME) if pki else None
    minter = ECardClient(ClientConfig(target=target, tls=app_tls))
    sink = ForwardSink()
    common: dict[str, Any] = {
        "target": target,
        "sink": sink,
        "ecard": ECardApp(campus, minter),
        "pki_dir": pki,
        "first_serial": 1 if fresh_hub else wallclock_floor() * 1_000,
    }
    devices = CampusDevices(population, minter, sink)
    base = seed * 1_000
    if spec.gates:
        gates = [t for t in campus.terminals if t.kind == "gate"]
        readers = [GateReader(info, seed=base + i, **common) for i, info in enumerate(gates)]
        if readers:
            devices.gates = GateFleet(readers, population, seed=seed)
            devices.all.append(devices.gates)
    if spec.canteen:
        windows = [t for t in campus.terminals if t.kind == "canteen_pos"]
        tills = [CanteenPos(info, seed=base + 500 + i, **common) for i, info in enumerate(windows)]
        if tills:
            devices.canteens = CanteenFleet(tills, population, seed=seed + 1)
            devices.all.append(devices.canteens)
    if spec.library:
        found = [t for t in campus.terminals if t.kind == "library_desk"]
        desks = [LibraryDesk(info, seed=base + 700 + i, **common) for i, info in enumerate(found)]
        if desks:
            devices.libraries = LibraryFleet(desks, population, seed=seed + 2)
            devices.all.append(devices.libraries)
    if spec.exam is not None:
        tablets = [
            ExamTablet(info, room=room, seed=base + 800 + i, **common)
            for i, (info, room) in enumerate(_exam_rooms(campus))
        ]
        if tablets:
            devices.tablets = ExamTabletFleet(tablets)
            devices.all.append(devices.tablets)
    return devices


def _exam_rooms(campus: CampusCredentials) -> list[tuple[TerminalInfo, str]]:
    """Each exam tablet and the room it stands in: its registered location when the export gives
    one, else a room of its own per tablet of the school ("R01", "R02", …)."""
    placed: list[tuple[TerminalInfo, str]] = []
    per_school: dict[str, int] = {}
    for info in campus.terminals:
        if info.kind != "exam_tablet":
            continue
        per_school[info.school_id] = per_school.get(info.school_id, 0) + 1
        placed.append((info, info.location or f"R{per_school[info.school_id]:02d}"))
    return placed


def offline_fault(
    plan: OfflinePlan | None, canteens: CanteenFleet | None, duration_s: float, seed: int
) -> Coroutine[Any, Any, None] | None:
    """What sends a share of each school's POS offline and back (they upload then), or None."""
    if plan is None or canteens is None:
        return None
    rng = random.Random(seed)
    by_school: dict[str, list[CanteenPos]] = {}
    for pos in canteens.terminals:
        by_school.setdefault(pos.info.school_id, []).append(pos)
    chosen: list[CanteenPos] = []
    for tills in by_school.values():
        count = max(1, round(plan.pos_share * len(tills)))
        chosen.extend(rng.sample(tills, min(count, len(tills))))
    offline = Fleet(chosen)

    async def play() -> None:
        await asyncio.sleep(plan.start_at * duration_s)
        offline.go_offline()
        await asyncio.sleep((plan.end_at - plan.start_at) * duration_s)
        await offline.go_online()

    return play()


async def settle_offline(canteens: CanteenFleet | None) -> None:
    """After the traffic: anything still offline or stored is brought online and uploaded."""
    if canteens is None:
        return
    for pos in canteens.terminals:
        if pos.offline:
            await pos.go_online()
        elif pos.offline_pending():
            await pos.upload_stored()
