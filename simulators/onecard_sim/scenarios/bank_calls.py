"""The calls `bank-outage` makes, in one place: to the hub (top-ups 圈存 and auto top-ups through
`FundsClient`, grant batches through `GrantsClient`, reconciliation 对账 through `SettlementClient`,
the ledger summary through `AdminClient`) and to the bank simulator (its outage, its balances).

Operators: each school's card-office clerk for its own students, the province administrator for
the ledger and reconciliation (`OperatorAccess`).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterable
from typing import Any

from onecard.bank.v1 import bank_service_pb2 as bank_pb
from onecard.funds.v1 import funds_service_pb2 as funds_pb
from onecard.grants.v1 import grant_service_pb2 as grants_pb
from onecard_client import DeadlineExceededError, UnavailableError
from onecard_client.campus import CampusCredentials
from onecard_sim.population import SimStudent
from onecard_sim.scenarios.episode import PROVINCE_ADMIN, OperatorAccess

__all__ = ["ACADEMIC_YEAR", "BankCalls"]

ACADEMIC_YEAR = "2026-2027"
TOP_UP_DEADLINE_S = 15.0  # the hub answers once the outcome is definite, or PENDING after its own wait
# Grant items whose money is not settled yet (FAILED for manual review counts too: nobody knows).
_GRANT_OPEN = (grants_pb.ITEM_STATUS_PENDING, grants_pb.ITEM_STATUS_UNCERTAIN)


class BankCalls:
    def __init__(self, access: OperatorAccess, bank_sim: Any, campus: CampusCredentials) -> None:
        self.access = access
        self.bank_sim = bank_sim
        self.campus = campus
        self._clients: dict[tuple[str, str], Any] = {}
        self.batches: list[tuple[str, str]] = []  # (school_id, batch_id) submitted
        self.topups: dict[str, str] = {}  # topup_id → school_id, every top-up answered PENDING
        self.unanswered: dict[str, tuple[SimStudent, int]] = {}  # top-ups whose call got no answer
        self.auto: list[SimStudent] = []  # students with an auto top-up set
        self.unexplained_lines: list[str] = []  # what reconciliation could not explain, a line each

    def _client(self, kind: str, operator: str) -> Any:
        key = (kind, operator)
        if key not in self._clients:
            import onecard_client

            cls = getattr(onecard_client, kind)
            self._clients[key] = cls(operator, self.access.config(operator))
        return self._clients[key]

    def _admin_operator(self) -> str:
        ops = self.access.operators
        return PROVINCE_ADMIN if PROVINCE_ADMIN in ops else ops[0]

    # -- the hub ---------------------------------------------------------------------------------

    async def ledger_by_kind(self) -> dict[str, int]:
        summary = await self._client("AdminClient", self._admin_operator()).ledger_summary()
        return {t.kind: t.balance_fen for t in summary.totals}

    async def top_up(self, student: SimStudent, amount_fen: int, request_id: str) -> None:
        """A top-up at the card office (the holder's bank account → wallet); a PENDING answer is
        followed until final by `not_final`."""
        client = self._client("FundsClient", self.access.operator_for(student.school_id))
        try:
            answer = await client.top_up(
                request_id, amount_fen, card_no=student.card_no, deadline_s=TOP_UP_DEADLINE_S
            )
        except (DeadlineExceededError, UnavailableError):
            # No answer: asked again (same request_id, the hub answers the original) by `not_final`.
            self.unanswered[request_id] = (student, amount_fen)
            raise
        if answer.topup.state == funds_pb.TOP_UP_STATE_PENDING:
            self.topups[answer.topup.topup_id] = student.school_id

    async def set_auto_top_up(
        self, student: SimStudent, *, threshold_fen: int, amount_fen: int, request_id: str
    ) -> None:
        client = self._client("FundsClient", self.access.operator_for(student.school_id))
        await client.set_auto_top_up(request_id, threshold_fen, amount_fen, True, card_no=student.card_no)
        self.auto.append(student)

    async def not_final(self) -> dict[str, int]:
        """Bank operations not final yet, by kind: top-ups (asked for and automatic) pending or in
        manual review, grant items pending or uncertain."""
        for request_id, (student, amount_fen) in list(self.unanswered.items()):
            with contextlib.suppress(DeadlineExceededError, UnavailableError):
                del self.unanswered[request_id]
                await self.top_up(student, amount_fen, request_id)
        pending = len(self.unanswered)
        for topup_id, school_id in list(self.topups.items()):
            client = self._client("FundsClient", self.access.operator_for(school_id))
            topup = (await client.get_top_up(topup_id)).topup
            if topup.state == funds_pb.TOP_UP_STATE_PENDING:
                pending += 1
            else:
                del self.topups[topup_id]
        auto = 0
        for student in self.auto:
            client = self._client("FundsClient", self.access.operator_for(student.school_id))
            last = (await client.get_bank_function(student.card.student_id)).auto_topup.last_topup_id
            if last and (await client.get_top_up(last)).topup.state == funds_pb.TOP_UP_STATE_PENDING:
                auto += 1
        review = 0
        for school_id in self.campus.schools:
            client = self._client("FundsClient", self.access.operator_for(school_id))
            review += len((await client.list_manual_review(school_id=school_id)).topups)
        return {
            "top_up": pending,
            "auto_top_up": auto,
            "manual_review": review,
            "grant_item": await self.grant_items_open(),
        }

    async def resolve_manual_review(self, tag: str) -> int:
        """What an operator does once the bank is back: each top-up in manual review is looked up at
        the bank (GetTransfer) and resolved as the bank has it (POSTED, or VOIDED); the hub checks the
        resolution against the bank itself. Returns how many were resolved."""
        resolved = 0
        for school_id in self.campus.schools:
            client = self._client("FundsClient", self.access.operator_for(school_id))
            for topup in (await client.list_manual_review(school_id=school_id)).topups:
                found = await self.bank_sim.control.get_transfer(topup.bank_code, topup.transfer_id)
                posted = found.status == bank_pb.TRANSFER_STATUS_POSTED
                resolution = funds_pb.RESOLUTION_POSTED if posted else funds_pb.RESOLUTION_VOIDED
                note = f"bank-outage: the bank has it {bank_pb.TransferStatus.Name(found.status)}"
                await client.resolve_manual_review(
                    f"{tag}-{topup.topup_id}", topup.topup_id, resolution, note
                )
                resolved += 1
        return resolved

    async def submit_grant_batch(
        self, school_id: str, students: Iterable[SimStudent], amount_fen: int, batch_id: str
    ) -> None:
        """Submits a national-grant batch for the school's students and approves it (it pays)."""
        client = self._client("GrantsClient", self.access.operator_for(school_id))
        items = [(s.card.student_id, amount_fen) for s in students]
        answer = await client.submit_grant_batch(
            f"{batch_id}-submit",
            school_id,
            batch_id,
            grants_pb.GRANT_TYPE_NATIONAL_GRANT,
            ACADEMIC_YEAR,
            items,
        )
        if not answer.accepted:
            lines = "; ".join(f"line {e.line}: {e.message}" for e in answer.errors[:3])
            raise ValueError(f"grant batch {batch_id} refused: {lines}")
        self.batches.append((school_id, batch_id))
        await client.approve_grant_batch(f"{batch_id}-approve", school_id, batch_id)

    async def grant_items_open(self) -> int:
        """Items of the submitted batches whose money is not settled yet."""
        open_items = 0
        for school_id, batch_id in self.batches:
            client = self._client("GrantsClient", self.access.operator_for(school_id))
            batch = (await client.get_grant_batch(school_id, batch_id)).batch
            open_items += sum(
                1
                for item in batch.items
                if item.status in _GRANT_OPEN
                or (
                    item.status == grants_pb.ITEM_STATUS_FAILED
                    and item.fail_reason == grants_pb.FAIL_REASON_MANUAL_REVIEW
                )
            )
        return open_items

    async def reconcile(self, business_date: str, request_id: str) -> int:
        """Reconciliation of every bank for the date; the differences left unexplained."""
        client = self._client("SettlementClient", self._admin_operator())
        answer = await client.reconcile(request_id, business_date)
        self.unexplained_lines = [
            f"{report.bank_code} {line.flow} {line.transfer_id}: {line.note or 'unexplained'}"
            f" (hub {line.hub_state or '—'} {line.hub_amount_fen} fen,"
            f" bank {line.bank_status or '—'} {line.bank_amount_fen} fen)"
            for report in answer.reports
            for line in report.lines
            if line.unexplained
        ] + [
            f"{report.bank_code}: statement not read — {report.statement_error}"
            for report in answer.reports
            if report.statement_error
        ]
        return int(answer.unexplained)

    # -- the bank simulator ----------------------------------------------------------------------

    async def bank_down(self, seconds: float) -> None:
        """Every bank call answers UNAVAILABLE for the next `seconds` (or until `bank_up`)."""
        await self.bank_sim.control.set_faults(outage_s=seconds)

    async def bank_up(self) -> None:
        await self.bank_sim.control.set_faults(outage_s=0.0)

    async def bank_total_fen(self) -> int:
        """Σ balances over every account of every simulated bank (cards and merchants)."""
        return int(await self.bank_sim.store.total_fen())

    async def close(self) -> None:
        clients, self._clients = self._clients, {}
        await asyncio.gather(*(c.close() for c in clients.values()), return_exceptions=True)
