"""Applying the provincial card system's changes (the use case behind cardsys_feed.py).

Each page of changes from the feed is decided in memory (`domain/cardsys.py`), in version order,
and journaled as one writer batch: the cards' new rows, the blocklist changes, an audit entry for
each applied change (actor kind "cardsys", the channel as actor) and a `cardsys_changes` row per
change — applied or skipped — whose highest version is where the feed resumes after a restart.
`apply` returns once that batch is durable. A change at or below the version applied already is
ignored, so a page sent twice (after a reconnect) changes nothing twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from onecard_hub.card_office.common import card_row
from onecard_hub.domain.audit import details
from onecard_hub.domain.cardsys import FeedChange, FeedOutcome, decide
from onecard_hub.domain.clock import to_cst
from onecard_hub.domain.errors import Unavailable
from onecard_hub.domain.model import Card
from onecard_hub.domain.pii import mask_card_no
from onecard_hub.hub import Hub
from onecard_hub.store.records import AuditRow, Batch, CardsysChangeRow

log = logging.getLogger(__name__)

ACTOR_KIND = "cardsys"


class CardsysChanges:
    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.version = hub.cardsys_version  # the last version applied (durable once `apply` returns)
        self.applied = 0  # changes applied since start (outcome APPLIED)

    async def apply(self, changes: Sequence[FeedChange]) -> list[FeedOutcome]:
        """Applies the changes after `version`, in order; returns once they are durable."""
        hub = self.hub
        if hub.writer.failed is not None:
            raise Unavailable("the hub's journal failed; it must restart")
        hub.writer.check_accepting()
        now = hub.clock.now_ms()
        batch = Batch()
        touched: dict[str, Card] = {}
        outcomes: list[FeedOutcome] = []
        for change in sorted(changes, key=lambda c: c.version):
            if change.version <= self.version:
                continue  # applied already: a page sent again after a reconnect
            card = hub.campus.cards.get(change.card_no)
            decision = decide(card, change)
            if card is not None and decision.outcome is FeedOutcome.APPLIED:
                before = f"{card.status.value}/bank {card.bank_status.value}"
                if decision.identity_to is not None:
                    batch.blocklist.extend(
                        hub.campus.set_card_status(card.card_no, decision.identity_to, at_ms=now)
                    )
                    hub.card_book.note_card(card)
                if decision.bank_to is not None:
                    card.bank_status = decision.bank_to
                touched[card.card_no] = card
                batch.audit.append(_audit(card, change, before, now))
                self.applied += 1
            elif decision.outcome is FeedOutcome.UNKNOWN_CARD:
                log.warning(
                    "cardsys v%d: unknown card %s, skipped", change.version, mask_card_no(change.card_no)
                )
            elif decision.outcome is not FeedOutcome.UNCHANGED:
                log.info(
                    "cardsys v%d: %s %s of card %s %s",
                    change.version,
                    change.function,
                    change.action,
                    mask_card_no(change.card_no),
                    decision.outcome.value,
                )
            batch.cardsys.append(
                CardsysChangeRow(
                    change.version,
                    change.card_no,
                    change.function,
                    change.action,
                    change.channel,
                    change.occurred_ms,
                    now,
                    decision.outcome.value,
                )
            )
            outcomes.append(decision.outcome)
            self.version = change.version
        if not batch.cardsys:
            return outcomes
        batch.cards.extend(card_row(c) for c in touched.values())
        await hub.writer.submit(batch)
        return outcomes


def _audit(card: Card, change: FeedChange, before: str, now_ms: int) -> AuditRow:
    return AuditRow(
        at_ms=now_ms,
        actor_kind=ACTOR_KIND,
        actor_id=change.channel,
        school_id=card.student.school_id,
        student_id=card.student.student_id,
        card_no=card.card_no,
        action=f"cardsys.{change.function}.{change.action}",
        request_id=f"cardsys-v{change.version}",
        details=details(
            before=before,
            after=f"{card.status.value}/bank {card.bank_status.value}",
            occurred=to_cst(change.occurred_ms).isoformat(timespec="seconds"),
        ),
    )
