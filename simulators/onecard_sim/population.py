"""Simulated students: their cards (keys, counter, PIN), where they are, and their e-card app.

`Population.load(keys_dir, school_ids, seed)` reads the credentials that `onecard-hub seed`
exported. Usable cards (active card, enrolled student) make the normal traffic; the few unusable
ones (a card reported lost, a suspended student) are kept apart and only come out as "mistakes"
(`take_unusable`).

A student is lent to one tap at a time (`take` … `give_back`): its chip counter (ATC) only moves
forward and its presence (inside or outside the campus) follows its approved gate passes, so two
taps of one student must never be in flight together. Boarders (住校生) start the day inside,
day students (走读生) outside.

Counters: a fresh run against a hub that already saw taps of these cards would repeat counters.
`atc_floor` (from `wallclock_floor()`: tenths of a second since 2026-01-01) starts every counter
above anything an earlier run sent, as the load tests do.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from onecard_client.campus import CampusCredentials, CardCredential
from onecard_client.credentials import QR_MAX_LIFETIME_MS, mint_qr_token

__all__ = ["ECardApp", "Minter", "Population", "SimStudent", "wallclock_floor"]

_FLOOR_EPOCH_S = 1_767_225_600  # 2026-01-01T00:00:00Z
_MAX_FLOOR = 0xFFFF_FFFF - 10_000_000  # leaves every card ten million taps of headroom
_PICK_TRIES = 24


def wallclock_floor(now_s: float | None = None) -> int:
    """A counter floor that grows with the wall clock (tenths of a second since 2026-01-01)."""
    now_s = time.time() if now_s is None else now_s
    return min(_MAX_FLOOR, max(0, int((now_s - _FLOOR_EPOCH_S) * 10)))


@dataclass(slots=True, eq=False)
class SimStudent:
    """A card holder: the card's credentials, the chip's counter, presence, meals eaten."""

    card: CardCredential
    atc: int  # the last counter value the chip used
    inside: bool  # True after an approved entry: the next gate pass is an exit
    busy: bool = False  # lent to a tap in flight
    presence_known: bool = False  # the hub confirmed `inside` (an approved pass or an anti-passback refusal)
    meals: dict[str, int] = field(default_factory=dict)  # meal key ("2026-11-24/lunch") → purchases

    @property
    def card_no(self) -> str:
        return self.card.card_no

    @property
    def school_id(self) -> str:
        return self.card.school_id

    @property
    def group(self) -> str:
        return self.card.student_group

    @property
    def usable(self) -> bool:
        return self.card.usable

    def next_atc(self) -> int:
        """The counter value of the next chip tap (the chip moves it forward on every tap)."""
        self.atc += 1
        return self.atc


class Minter(Protocol):
    """What the e-card app needs from the hub's ECardService (the SDK's ECardClient has it)."""

    async def mint_qr_code(self, card_no: str, ecard_key: bytes, hub_ms: int) -> object: ...


class ECardApp:
    """The phone app every simulated student carries: it shows a fresh dynamic QR code.

    With a `minter` (the SDK's `ECardClient`) the app fetches each code from the hub's
    ECardService, as the issue asks. Without one — or when the hub does not answer (the phone has
    its own network, but in a simulation the hub plays the platform) — the app mints the code
    itself with the exported issuer keys, which is what load tests do. `minted_by_hub` and
    `minted_locally` count both ways.
    """

    def __init__(self, campus: CampusCredentials, minter: Minter | None = None) -> None:
        self.campus = campus
        self.minter = minter
        self.minted_by_hub = 0
        self.minted_locally = 0

    async def qr_code(self, student: SimStudent, hub_ms: int) -> str:
        if self.minter is not None:
            try:
                answer = await self.minter.mint_qr_code(student.card_no, student.card.ecard_key, hub_ms)
            except Exception:  # the SDK's OneCardError: fall back to the platform's own minting
                pass
            else:
                token = answer if isinstance(answer, str) else getattr(answer, "token", "")
                if isinstance(token, str) and token:
                    self.minted_by_hub += 1
                    return token
        return self.local_code(student, hub_ms)

    def local_code(self, student: SimStudent, issued_ms: int, lifetime_ms: int = QR_MAX_LIFETIME_MS) -> str:
        """A code minted here with the exported issuer keys (the simulator plays the platform)."""
        self.minted_locally += 1
        return mint_qr_token(
            card_no=student.card_no,
            ecard_key=student.card.ecard_key,
            signing_key=self.campus.signing_key,
            issued_ms=issued_ms,
            nonce=secrets.token_bytes(8),
            lifetime_ms=lifetime_ms,
        )

    def expired_code(self, student: SimStudent, hub_ms: int) -> str:
        """A screenshot of a code shown two minutes ago: the "expired QR" mistake."""
        return self.local_code(student, hub_ms - 2 * QR_MAX_LIFETIME_MS)


class Population:
    """Every simulated student of the chosen schools, lent to one tap at a time."""

    def __init__(self, campus: CampusCredentials, students: Iterable[SimStudent], seed: int = 0) -> None:
        self.campus = campus
        self.rng = random.Random(seed)
        self.students: list[SimStudent] = list(students)
        self._usable: dict[str, list[SimStudent]] = {}
        self._unusable: dict[str, list[SimStudent]] = {}
        for student in self.students:
            pool = self._usable if student.usable else self._unusable
            pool.setdefault(student.school_id, []).append(student)

    @classmethod
    def load(
        cls,
        keys_dir: str | Path,
        school_ids: Sequence[str] | None = None,
        seed: int = 0,
        *,
        atc_floor: int = 0,
        campus: CampusCredentials | None = None,
    ) -> Population:
        """Students of `school_ids` (every school when None) from the exported credentials."""
        campus = campus or CampusCredentials.load(keys_dir)
        wanted = set(school_ids) if school_ids else set(campus.schools)
        unknown = wanted - set(campus.schools)
        if unknown:
            raise ValueError(f"unknown school(s): {', '.join(sorted(unknown))}")
        students = [
            SimStudent(card, max(card.atc, atc_floor), inside=card.student_group == "boarder")
            for card in sorted(campus.cards, key=lambda c: c.card_no)
            if card.school_id in wanted
        ]
        return cls(campus, students, seed)

    @property
    def schools(self) -> list[str]:
        return sorted(set(self._usable) | set(self._unusable))

    def usable(self, school_id: str) -> list[SimStudent]:
        return self._usable.get(school_id, [])

    def unusable(self, school_id: str) -> list[SimStudent]:
        return self._unusable.get(school_id, [])

    def take(
        self,
        school_id: str,
        *,
        inside: bool | None = None,
        group: str | None = None,
        prefer: Callable[[SimStudent], bool] | None = None,
    ) -> SimStudent | None:
        """A free usable student of the school (inside/outside and group when given), now busy.

        `prefer` picks among the matching students when one of them satisfies it (e.g. "has not
        eaten this meal yet"). None when no free student matches. Give it back with `give_back`.
        """
        pool = self.usable(school_id)
        if prefer is not None:
            student = self._take(pool, inside, group, prefer)
            if student is not None:
                return student
        return self._take(pool, inside, group)

    def take_unusable(self, school_id: str) -> SimStudent | None:
        """A free student whose card cannot be approved (lost card, suspended student)."""
        return self._take(self.unusable(school_id), None, None)

    def take_student(self, student: SimStudent) -> bool:
        """Lends this very student (a scenario's chosen card) when free; False when busy."""
        if student.busy:
            return False
        student.busy = True
        return True

    def give_back(self, student: SimStudent) -> None:
        student.busy = False

    def _take(
        self,
        pool: list[SimStudent],
        inside: bool | None,
        group: str | None,
        prefer: Callable[[SimStudent], bool] | None = None,
    ) -> SimStudent | None:
        if not pool:
            return None

        def fits(s: SimStudent) -> bool:
            return (
                not s.busy
                and (inside is None or s.inside == inside)
                and (group is None or s.group == group)
                and (prefer is None or prefer(s))
            )

        for _ in range(_PICK_TRIES):
            student = pool[self.rng.randrange(len(pool))]
            if fits(student):
                student.busy = True
                return student
        start = self.rng.randrange(len(pool))
        for i in range(len(pool)):
            student = pool[(start + i) % len(pool)]
            if fits(student):
                student.busy = True
                return student
        return None
