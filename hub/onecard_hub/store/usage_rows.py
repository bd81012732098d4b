"""The journal read back for usage statistics (domain/usage.py) at start: the taps of the usage
window per terminal, scene and business day, and each card's last day with an approved tap.

A tap is any request row with a scene and a decision (`reason` >= 0: Authorize, and library and
exam calls that journal theirs the same way); `reason` 0 is an approval.
"""

from __future__ import annotations

import aiosqlite

from onecard_hub.store.records import Snapshot, TapCountRow

TAP_COUNTS = (
    "SELECT caller, scene, business_day, SUM(reason = 0), SUM(reason > 0) FROM requests"
    " WHERE created_ms >= ? AND scene > 0 AND reason >= 0 GROUP BY caller, scene, business_day"
)
CARD_LAST_USED = (
    "SELECT card_no, MAX(business_day) FROM requests"
    " WHERE created_ms >= ? AND scene > 0 AND reason = 0 AND card_no != '' GROUP BY card_no"
)


async def load_usage(db: aiosqlite.Connection, snap: Snapshot, since_ms: int) -> None:
    async with db.execute(TAP_COUNTS, (since_ms,)) as cur:
        snap.tap_counts = [TapCountRow(str(r[0]), r[1], r[2], r[3], r[4]) for r in await cur.fetchall()]
    async with db.execute(CARD_LAST_USED, (since_ms,)) as cur:
        snap.card_last_used = {str(r[0]): int(r[1]) for r in await cur.fetchall()}
