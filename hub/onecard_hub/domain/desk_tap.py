"""A tap at a library desk or an exam tablet: the checks every scene shares with the gate.

`admit` is the first half of `Campus.authorize`: the terminal may serve the scene (else
PERMISSION_DENIED), the scene is live at its school (pilot roll-out), the card is known, its
credential checks out (a chip's counter moves on, a QR code's nonce is used up — both are
state the caller must journal), and `holder_refusal` (card status, e-card, school, 学籍).
What is left to decide belongs to the scene (a book, an exam seat).
"""

from __future__ import annotations

from onecard_hub.domain.campus import Campus, QrCredential, Tap, TapResult, holder_refusal
from onecard_hub.domain.decisions import APPROVED, DeclineReason


def admit(campus: Campus, tap: Tap, now_ms: int) -> TapResult:
    """Decides whether the holder may use the scene at all; APPROVED leaves the rest to it."""
    campus.check_scene(tap.terminal, tap.scene)
    card = campus.cards.get(tap.card_no)
    if tap.scene not in campus.schools[tap.terminal.school_id].live_scenes:
        return TapResult(DeclineReason.SCENE_NOT_LIVE, card)
    if card is None:
        return TapResult(DeclineReason.CARD_UNKNOWN, None)
    result = campus.check_credential(card, tap, now_ms)
    if result.reason is APPROVED:
        result.reason = holder_refusal(
            card, tap.terminal.school_id, qr=isinstance(tap.credential, QrCredential)
        )
    return result
