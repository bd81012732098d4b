"""`approvals_after_loss` (DESIGN §10), as a pure function over what a run observed.

When is a tap "after the loss"? The operator's ReportLoss call is answered only once the loss is
committed (durable, and in the hub's memory: the next tap of that card is declined). The devices and
the operator's client run in one process, so their clocks (`time.monotonic()`) compare exactly:

- **after** the loss: the tap's request left the device (`TapEvent.sent_s`, its first attempt) later
  than the ReportLoss answer arrived (`LossReport.answered_s`). The hub received it after the commit,
  so it must not be approved: each approval is a violation line.
- **in flight**: sent before that answer arrived, answered after it. The hub may have decided it
  before or after the commit; an approval there proves nothing either way, so these are counted apart
  and never judged (the conservative reading the issue asks for).
- **before**: answered before the loss was answered (an approval is expected there).

Offline decisions (a terminal on its local rules) are not judged here: the blocklist invariant of
`invariants.py` covers them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from onecard_sim.events import APPROVED, TapEvent
from onecard_sim.scenarios.invariants import mask_card_no

__all__ = ["LOST", "LossReport", "LossSummary", "check_losses"]

_CST = timezone(timedelta(hours=8))
LOST = "CARD_REPORTED_LOST"


@dataclass(frozen=True, slots=True)
class LossReport:
    """One loss report (挂失) the scenario's operator made, as its client saw the answer."""

    card_no: str
    answered_s: float  # time.monotonic() when the ReportLoss answer arrived (the loss is committed)
    hub_ms: int  # the hub's time then (for the violation lines)
    error: str = ""  # "ERROR_<code>" when the report itself failed (then nothing is judged for the card)


@dataclass
class LossSummary:
    """What the report's `lost_cards` section shows."""

    cards_reported: int = 0
    reports_failed: int = 0
    taps_before_loss: int = 0
    in_flight_at_loss: int = 0  # sent before the answer, answered after: not judged
    taps_after_loss: int = 0  # sent after the answer arrived
    declined_reported_lost: int = 0  # of those, declined CARD_REPORTED_LOST
    approvals_after_loss: int = 0  # of those, approved: each one a violation
    after_loss_outcomes: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, object]:
        return {
            "cards_reported": self.cards_reported,
            "reports_failed": self.reports_failed,
            "taps_before_loss": self.taps_before_loss,
            "in_flight_at_loss": self.in_flight_at_loss,
            "taps_after_loss": self.taps_after_loss,
            "declined_reported_lost": self.declined_reported_lost,
            "after_loss_outcomes": dict(sorted(self.after_loss_outcomes.items())),
        }


def check_losses(
    reports: Mapping[str, LossReport], taps: Iterable[TapEvent]
) -> tuple[LossSummary, list[str]]:
    """Sorts every online tap of a reported card into before / in flight / after its loss report;
    returns the summary and one violation line per approval after the loss (and per failed report)."""
    summary = LossSummary()
    lines: list[str] = []
    for report in sorted(reports.values(), key=lambda r: r.answered_s):
        if report.error:
            summary.reports_failed += 1
            lines.append(
                f"the loss report of card {mask_card_no(report.card_no)} failed ({report.error})"
                f" at {_when(report.hub_ms)}: the card was never reported lost"
            )
        else:
            summary.cards_reported += 1
    for tap in sorted(taps, key=lambda t: t.sent_s):
        loss = reports.get(tap.card_no)
        if loss is None or loss.error or tap.offline:
            continue
        if tap.sent_s <= loss.answered_s:
            if tap.real_s <= loss.answered_s:
                summary.taps_before_loss += 1
            else:
                summary.in_flight_at_loss += 1
            continue
        summary.taps_after_loss += 1
        summary.after_loss_outcomes[tap.outcome] += 1
        if tap.outcome == LOST:
            summary.declined_reported_lost += 1
        elif tap.outcome == APPROVED:
            summary.approvals_after_loss += 1
            lines.append(
                f"card {mask_card_no(tap.card_no)} was approved ({tap.scene} at {tap.terminal_id},"
                f" tap time {_when(tap.hub_ms)}) although its loss report was answered at"
                f" {_when(loss.hub_ms)}, {tap.sent_s - loss.answered_s:.3f} s before the tap was sent"
            )
    if summary.cards_reported and not summary.taps_after_loss:
        lines.append(
            f"{summary.cards_reported} card(s) were reported lost but none of them was tapped afterwards:"
            f" the run proved nothing about approvals after a loss"
        )
    return summary, lines


def _when(hub_ms: int) -> str:
    return datetime.fromtimestamp(hub_ms / 1000, tz=_CST).strftime("%H:%M:%S")
