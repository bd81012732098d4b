"""Library traffic of a scenario: students visit the library desks through the stretch (borrow,
return, now and then a mistake — see `onecard_sim.library_desk`). Its invariant: the hub never
approves what the simulator knew it must refuse (a book on loan to someone else, a borrow past the
loan limit, a return of a book the student does not hold); the `library` section counts them."""

from __future__ import annotations

from onecard_sim import curves
from onecard_sim.driver import Stream
from onecard_sim.library_desk import LibraryFleet
from onecard_sim.scenarios.episode import Episode, EpisodeResult

__all__ = ["STREAM", "LibraryVisits"]

STREAM = "library_visits"


class LibraryVisits(Episode):
    def __init__(self, desks: LibraryFleet, share: float) -> None:
        self.desks = desks
        self.share = share

    def streams(
        self, start_ms: int, simulated_s: float, duration_s: float
    ) -> tuple[list[Stream], dict[str, int]]:
        population = self.desks.population
        visits = self.share * sum(len(population.usable(s)) for s in population.schools)
        if visits <= 0:
            return [], {}
        return [Stream(STREAM, curves.constant(visits / duration_s), self.desks.visit)], {
            STREAM: round(visits)
        }

    def result(self) -> EpisodeResult:
        desks = self.desks
        data = {
            "loans_open": len(desks.loans),
            "loan_limit": desks.loan_limit,
            "mistakes": dict(sorted(desks.mistakes.items())),
        }
        lines = [f"library: {line}" for line in desks.surprises]
        return EpisodeResult("library", data, lines)
