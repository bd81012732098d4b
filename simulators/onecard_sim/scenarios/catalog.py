"""The scenarios `onecard-sim scenario NAME` knows: which stretch of which day, which devices, which faults.

A scenario is data: the runner (`runner.py`) plays any of them. The simulated day is a fixed Tuesday, so
the same seed gives the same campus *and* the same business day (meal windows, daily limits).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

__all__ = [
    "CST",
    "NOT_BUILT",
    "SCENARIOS",
    "SIMULATED_DAY",
    "BankPlan",
    "ExamPlan",
    "LossPlan",
    "OfflinePlan",
    "ScenarioSpec",
    "UnknownScenario",
    "lookup",
]

CST = timezone(timedelta(hours=8), "Asia/Shanghai")  # business time
# A Tuesday in term time (2026-11-24); every scenario plays a stretch of it.
SIMULATED_DAY = datetime(2026, 11, 24, tzinfo=CST)


@dataclass(frozen=True)
class OfflinePlan:
    """A share of the canteen POS loses the hub between two points of the scenario (fractions of it)."""

    pos_share: float = 0.5
    start_at: float = 0.3
    end_at: float = 0.6
    reupload_all: bool = True  # once all is uploaded, every batch is uploaded a second time


@dataclass(frozen=True)
class LossPlan:
    """Cards reported lost (挂失) by the card office during the rush, and kept in use afterwards."""

    card_share: float = 0.03  # of the usable students of each school
    min_cards: int = 3  # per school
    max_cards: int = 40  # per school
    start_at: float = 0.2  # reports spread over this stretch of the run (fractions of it)
    end_at: float = 0.6
    taps_per_card: float = (
        12.0  # taps of each chosen card over the run (holder or thief), beside normal traffic
    )


@dataclass(frozen=True)
class ExamPlan:
    """Exam sessions of each school, their rosters, and the mistakes students make at the tablets.

    Offsets are simulated minutes after the stretch starts; every session's check-in window opens
    `window_before_min` before its start and closes `window_after_min` after it."""

    session_starts_min: tuple[int, ...] = (40, 130)
    session_length_min: int = 90
    window_before_min: int = 30
    window_after_min: int = 15
    roster_share: float = 0.9  # of the usable students, spread over the sessions
    show_share: float = 0.93  # of the roster, who come to check in (the others are absent)
    wrong_room_share: float = 0.06  # arrivals who try another room's tablet first
    double_share: float = 0.05  # arrivals who check in a second time right after
    late_share: float = (
        0.04  # of the roster, who arrive after the window closed (of those who do not come in time)
    )
    not_on_roster_share: float = 0.02  # arrivals of a student who sits no session at that time


@dataclass(frozen=True)
class BankPlan:
    """The bank simulator takes part: top-ups (圈存) and a grant batch run through it, and it goes down
    (an outage) between two points of the scenario (fractions of it), then comes back."""

    outage_start_at: float = 0.3
    outage_end_at: float = 0.6
    top_up_share: float = 0.1  # of the usable students, who top up at a kiosk or the card office
    top_up_fen: tuple[int, ...] = (2_000, 5_000, 10_000)  # amounts they choose
    auto_top_up_share: float = 0.05  # of the usable students, who set an auto top-up before the rush
    auto_threshold_fen: int = 100_000  # auto top-up when the wallet drops under this (high: it fires)
    auto_amount_fen: int = 5_000
    grant_share: float = 0.2  # of the usable students of each school, paid a grant by one batch
    grant_fen: int = 250_000  # 国家助学金, one term's instalment
    grant_at: float = 0.25  # when the batch is submitted (just before the outage: it pays through it)
    settle_timeout_s: float = 60.0  # real seconds to wait, after the run, for every operation to be final


@dataclass(frozen=True)
class ScenarioSpec:
    name: str
    summary: str
    start: str  # local time of day (CST) the simulated stretch starts, "11:00"
    end: str  # and ends, "13:00"
    default_duration_s: float = 60.0
    gates: bool = True
    canteen: bool = True
    # Curves of onecard_sim.curves by name (scenarios/traffic.py CURVES).
    gate_curve: str = "class_changes"
    canteen_curve: str = "meal_rush"
    # Shares of the usable students: who pass a gate (half in, half out; in the morning: of those
    # outside, who come in), who eat, and (morning) who go out again.
    gate_share: float = 0.3
    canteen_share: float = 0.9
    exit_share: float = 0.0
    offline: OfflinePlan | None = None
    loss: LossPlan | None = None
    exam: ExamPlan | None = None
    library: bool = False  # library desks lend and take back books
    library_share: float = 0.0  # of the usable students, who visit the library desk (borrow or return)
    bank: BankPlan | None = None  # the bank simulator takes part (started by the runner with the hub)
    # Outcomes "ERROR_<code>" the scenario provokes on purpose; any other error is a violation.
    expected_errors: frozenset[str] = field(default_factory=frozenset)

    @property
    def start_at(self) -> datetime:
        hours, minutes = self.start.split(":")
        return SIMULATED_DAY + timedelta(hours=int(hours), minutes=int(minutes))

    @property
    def simulated_s(self) -> float:
        hours, minutes = self.end.split(":")
        end = SIMULATED_DAY + timedelta(hours=int(hours), minutes=int(minutes))
        return (end - self.start_at).total_seconds()

    def clock_speed(self, duration_s: float) -> float:
        """How much faster than real time the hub's clock runs to fit the stretch into `duration_s`."""
        return self.simulated_s / duration_s


SCENARIOS: dict[str, ScenarioSpec] = {
    spec.name: spec
    for spec in (
        ScenarioSpec(
            name="meal-rush",
            summary="lunch 11:00–13:00: canteen POS in every school, some gate traffic",
            start="11:00",
            end="13:00",
        ),
        ScenarioSpec(
            name="morning-gates",
            summary="06:30–08:30: students come in through the gates, a few go out, a few make mistakes",
            start="06:30",
            end="08:30",
            canteen=False,
            gate_curve="morning_entries",
            gate_share=0.95,
            canteen_share=0.0,
            exit_share=0.05,
        ),
        ScenarioSpec(
            name="offline-canteen",
            summary="lunch 11:00–13:00; mid-rush half the canteen POS lose the hub, work offline, "
            "come back, upload, then upload every batch a second time",
            start="11:00",
            end="13:00",
            offline=OfflinePlan(),
        ),
        ScenarioSpec(
            name="lost-card-mid-rush",
            summary="lunch 11:00–13:00, gates and canteens busy; mid-rush the card office reports cards lost"
            " (挂失) while their holders — or thieves — keep tapping them",
            start="11:00",
            end="13:00",
            gate_share=0.5,
            loss=LossPlan(),
        ),
        ScenarioSpec(
            name="exam-day",
            summary="08:00–11:00: two exam sessions per school across rooms; students check in at the"
            " exam tablets (wrong rooms, late arrivals, double check-ins); the library desk lends books",
            start="08:00",
            end="11:00",
            gates=False,
            canteen=False,
            gate_share=0.0,
            canteen_share=0.0,
            exam=ExamPlan(),
            library=True,
            library_share=0.15,
        ),
        ScenarioSpec(
            name="bank-outage",
            summary="lunch 11:00–13:00 with top-ups (圈存) and a grant batch running; mid-rush the bank goes"
            " down and comes back — canteens keep approving from wallets, every bank operation ends final"
            " and reconciliation (对账) explains every difference",
            start="11:00",
            end="13:00",
            bank=BankPlan(),
        ),
    )
}


def _not_built() -> dict[str, str]:
    from onecard_sim.scenarios.bank_parts import missing_bank_parts

    missing = missing_bank_parts()
    return {"bank-outage": "needs " + "; ".join(missing)} if missing else {}


# Names whose parts are not all built yet; asking for one says what is missing and exits 2.
NOT_BUILT: dict[str, str] = _not_built()


class UnknownScenario(LookupError):
    """No scenario of that name; the message lists the ones there are."""


def lookup(name: str) -> ScenarioSpec:
    if name in SCENARIOS:
        return SCENARIOS[name]
    built = ", ".join(SCENARIOS)
    later = ", ".join(NOT_BUILT)
    raise UnknownScenario(f"unknown scenario {name!r}; scenarios: {built} (not built yet: {later})")
