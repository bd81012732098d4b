"""An episode: what a scenario plays beside the campus traffic (cards reported lost mid-rush, exam
sessions with their tablets), with its own streams, its own calls and its own invariants.

The runner (`runner.py`) plays every episode of a scenario through the same steps:

    prepare(start_ms)   before the stretch: set up what the traffic needs (exam sessions, rosters)
    streams(...)        arrivals added to the driver's (taps of the lost cards, check-ins)
    watch(event)        sees every TapEvent of the run (from the start of the stretch)
    play(duration_s)    runs beside the driver (the card office reporting losses)
    finish()            after the traffic (fetch the attendance lists)
    result()            the report section, the violations, `approvals_after_loss`
    close()             always, at the end

`episodes.build_episodes` makes the episodes a `ScenarioSpec` asks for.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from onecard_client import ClientConfig, TLSConfig
from onecard_client.campus import CampusCredentials
from onecard_sim.driver import Stream
from onecard_sim.events import TapEvent

__all__ = ["Episode", "EpisodeResult", "OperatorAccess"]

PROVINCE_ADMIN = "province-admin"


@dataclass
class EpisodeResult:
    section: str = ""  # the report's key for `data` ("" when the episode adds none)
    data: dict[str, Any] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)
    approvals_after_loss: int = 0
    conserved: bool = True  # the bank half of `ledger.conserved` (bank-outage)


@dataclass(frozen=True)
class OperatorAccess:
    """How an episode reaches the hub as an operator: the school's card-office clerk when the
    campus has one, else the province administrator; mutual TLS with its certificate under `pki`."""

    target: str
    pki: Path | None
    operators: tuple[str, ...]

    @classmethod
    def of(cls, campus: CampusCredentials, target: str, pki: Path | None) -> OperatorAccess:
        return cls(target, pki, tuple(campus.operators))

    def operator_for(self, school_id: str) -> str:
        clerk = f"{school_id}-clerk"
        if clerk in self.operators:
            return clerk
        return PROVINCE_ADMIN if PROVINCE_ADMIN in self.operators else self.operators[0]

    def config(self, operator: str) -> ClientConfig:
        tls = TLSConfig.for_operator(self.pki, operator) if self.pki else None
        return ClientConfig(target=self.target, tls=tls)


class Episode:
    """Base class: every step does nothing until a subclass says otherwise."""

    async def prepare(self, start_ms: int) -> None:
        return None

    def streams(
        self, start_ms: int, simulated_s: float, duration_s: float
    ) -> tuple[list[Stream], dict[str, int]]:
        return [], {}

    def watch(self, event: TapEvent) -> None:
        return None

    async def play(self, duration_s: float) -> None:
        return None

    async def finish(self) -> None:
        return None

    def result(self) -> EpisodeResult:
        return EpisodeResult()

    async def close(self) -> None:
        return None
