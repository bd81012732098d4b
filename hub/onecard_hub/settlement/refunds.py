"""Wallet refund on leaving: a graduated or withdrawn student's remaining balance is paid to the bank
account of their card, once per student (payments.py for the two-phase steps). A refusal (bank function
not activated, account frozen) stays FAILED and visible; calling again retries it."""

from __future__ import annotations

from onecard_hub.domain.errors import FailedPrecondition
from onecard_hub.domain.model import Card, CardStatus, Enrollment, Student
from onecard_hub.domain.settlement import PaymentStatus, wallet_refund_transfer_id
from onecard_hub.hub import Hub
from onecard_hub.settlement.book import WALLET_REFUND, Payment, SettlementBook
from onecard_hub.settlement.payments import Payer
from onecard_hub.store.records import Batch

LEFT = (Enrollment.GRADUATED, Enrollment.WITHDRAWN)


def bank_card(hub: Hub, student: Student) -> Card | None:
    """The student's newest card that is not replaced: its bank account receives the refund."""
    cards = [c for c in hub.campus.cards_of(student) if c.status is not CardStatus.REPLACED]
    cards.sort(key=lambda c: (c.issued_ms, c.card_no))
    return cards[-1] if cards else None


async def refund_wallet(hub: Hub, book: SettlementBook, payer: Payer, student: Student) -> Payment:
    if student.enrollment not in LEFT:
        raise FailedPrecondition(
            f"student {student.student_id} is {student.enrollment.value}: only one who left is refunded",
            reason="ILLEGAL_TRANSITION",
            metadata={"state": student.enrollment.value},
        )
    key = wallet_refund_transfer_id(student.student_id)
    payment = book.payments.get(key)
    if payment is None:
        card = bank_card(hub, student)
        payment = Payment(
            key,
            WALLET_REFUND,
            student.student_id,
            student.school_id,
            "",
            card.bank_code if card else "",
            card.card_no if card else "",
            max(student.wallet.balance_fen, 0),
            updated_ms=hub.clock.now_ms(),
        )
        if payment.amount_fen == 0:
            payment.status = PaymentStatus.NOTHING_TO_PAY
        book.keep(payment)
        await hub.writer.submit(Batch(payments=[payment.row()]))
    elif payment.status is PaymentStatus.FAILED:
        payment.amount_fen = max(student.wallet.balance_fen, 0)  # nothing moved: the balance then is owed now
    return await payer.pay(payment)
