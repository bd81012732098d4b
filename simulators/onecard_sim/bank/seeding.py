"""Accounts for a seeded campus, opened once (idempotent on restart): one per card at the card's
co-branded bank — activated or not as the credentials export says (`bank_status`) — with an opening
balance, and one per canteen merchant at its bank."""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path

from onecard.bank.v1 import bank_service_pb2 as pb
from onecard_client.campus import CampusCredentials
from onecard_sim.bank.store import BankStore

log = logging.getLogger(__name__)

STATE_OF = {
    "active": pb.ACCOUNT_STATE_ACTIVE,
    "not_activated": pb.ACCOUNT_STATE_NOT_ACTIVATED,
    "frozen": pb.ACCOUNT_STATE_FROZEN,
    "lost": pb.ACCOUNT_STATE_FROZEN,  # a lost bank card is frozen at the bank (挂失)
}


async def open_campus_accounts(store: BankStore, keys_dir: str | Path, opening_balance_fen: int) -> int:
    """Opens what is missing; the number of accounts opened now."""
    creds = await asyncio.to_thread(CampusCredentials.load, keys_dir)
    now = time.time_ns() // 1_000_000
    opened = 0
    for card in creds.cards:
        if not card.bank_code:
            continue
        state = STATE_OF.get(card.bank_status, pb.ACCOUNT_STATE_ACTIVE)
        _, new = await store.open_account(
            card.bank_code, card.card_no, "card", state, opening_balance_fen, now
        )
        opened += new
    for merchant in creds.merchants:
        owner = f"merchant:{merchant.merchant_id}"
        _, new = await store.open_account(
            merchant.bank_code, "", owner, pb.ACCOUNT_STATE_ACTIVE, 0, now, merchant.account_no
        )
        opened += new
    if opened:
        log.info("opened %d accounts for the campus in %s", opened, keys_dir)
    return opened
