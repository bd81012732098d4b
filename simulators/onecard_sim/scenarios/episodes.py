"""The episodes a scenario plays beside its traffic (see `episode.py`), made from its spec."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from onecard_client.campus import CampusCredentials
from onecard_sim.scenarios.catalog import ScenarioSpec
from onecard_sim.scenarios.devices import CampusDevices
from onecard_sim.scenarios.episode import Episode, OperatorAccess

__all__ = ["build_episodes"]


def build_episodes(
    spec: ScenarioSpec,
    devices: CampusDevices,
    campus: CampusCredentials,
    *,
    target: str,
    pki: Path | None,
    seed: int,
    bank: Any = None,
) -> list[Episode]:
    """The episodes of `spec`; `bank` is the running bank simulator (`onecard_sim.bank`) when the
    scenario has one."""
    access = OperatorAccess.of(campus, target, pki)
    episodes: list[Episode] = []
    if spec.loss is not None:
        from onecard_sim.scenarios.lost_cards import LostCards

        episodes.append(LostCards(spec.loss, devices, access, seed))
    if spec.exam is not None and devices.tablets is not None:
        from onecard_sim.scenarios.exam_day import ExamDay

        episodes.append(ExamDay(spec.exam, devices.tablets, devices.population, access, seed))
    if spec.library and devices.libraries is not None and spec.library_share > 0:
        from onecard_sim.scenarios.library_visits import LibraryVisits

        episodes.append(LibraryVisits(devices.libraries, spec.library_share))
    if spec.bank is not None and bank is not None:
        from onecard_sim.scenarios.bank_calls import BankCalls
        from onecard_sim.scenarios.bank_outage import BankOutage

        calls = BankCalls(access, bank, campus)
        episodes.append(BankOutage(spec.bank, devices, calls, seed))
    return episodes
