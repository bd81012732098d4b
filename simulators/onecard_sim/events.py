"""What simulated devices tell the scenario runner: one event per tap and per offline upload.

Devices (gate readers, canteen POS, library desks, exam tablets) push events into an `EventSink`;
the scenario runner collects them into throughput and latency series, decision counts and
invariant checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

GATE_ENTRY = "gate_entry"
GATE_EXIT = "gate_exit"
CANTEEN_PURCHASE = "canteen_purchase"
LIBRARY_BORROW = "library_borrow"
LIBRARY_RETURN = "library_return"
EXAM_CHECK_IN = "exam_check_in"
SCENES = (GATE_ENTRY, GATE_EXIT, CANTEEN_PURCHASE, LIBRARY_BORROW, LIBRARY_RETURN, EXAM_CHECK_IN)

APPROVED = "APPROVED"
OFFLINE_APPROVED = "OFFLINE_APPROVED"  # approved by the terminal on local rules, stored for upload
OFFLINE_REFUSED = "OFFLINE_REFUSED"  # refused by the terminal on local rules (blocklist, caps, signature)


@dataclass(frozen=True, slots=True)
class TapEvent:
    """One tap or scan as the device saw it."""

    scene: str  # one of SCENES
    # "APPROVED", a DeclineReason name without its prefix ("INSUFFICIENT_FUNDS"),
    # OFFLINE_APPROVED / OFFLINE_REFUSED, or "ERROR_<grpc code name>" for a broken call.
    outcome: str
    latency_ms: float  # request sent → answer received; 0.0 for an offline decision
    hub_ms: int  # the hub's (simulated) time of the tap, Unix ms
    real_s: float  # loop time when the answer arrived (time.monotonic())
    card_no: str
    terminal_id: str
    request_id: str = ""
    offline: bool = False
    # time.monotonic() when the request left the device (its first attempt; the SDK may retry):
    # what "sent after the loss report was answered" is measured against. 0.0 offline.
    sent_s: float = 0.0


@dataclass(frozen=True, slots=True)
class UploadEvent:
    """One offline batch uploaded by a terminal, as the hub answered it."""

    terminal_id: str
    transactions: int
    booked: int
    duplicates: int
    rejected: int
    reupload: bool  # True when this is a deliberate second upload of a batch already sent


class EventSink(Protocol):
    def tap(self, event: TapEvent) -> None: ...

    def upload(self, event: UploadEvent) -> None: ...
