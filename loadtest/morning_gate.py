"""The morning rush at the gates (`MorningGateShape`): 85% gate taps, 15% breakfast purchases.

`--peak-rate` taps/s before the first bell, over `--shape-seconds`; run the hub on a simulated clock in
the morning (`--clock-start 2026-11-24T07:30:00+08:00`: both gate groups open, breakfast served).

    .venv/bin/locust -f loadtest/morning_gate.py --host 127.0.0.1:50051 --keys loadtest/data/hub.keys \\
        --peak-rate 400 --shape-seconds 120

See loadtest/README.md.
"""

from onecard_load.shapes import MorningGateShape
from onecard_load.users import CanteenPos, GateReader

__all__ = ["CanteenUser", "GateUser", "MorningGateShape"]


class CanteenUser(CanteenPos):
    weight = round(100 * MorningGateShape.profile.canteen_share)


class GateUser(GateReader):
    weight = 100 - round(100 * MorningGateShape.profile.canteen_share)
