"""The lunch rush at the canteens (`MealRushShape`): 85% canteen purchases, 15% gate taps.

`--peak-rate` taps/s at the plateau, over `--shape-seconds`; run the hub on a simulated clock inside the
lunch window (`--clock-start 2026-11-24T12:00:00+08:00`).

    .venv/bin/locust -f loadtest/meal_rush.py --host 127.0.0.1:50051 --keys loadtest/data/hub.keys \\
        --peak-rate 400 --shape-seconds 120

See loadtest/README.md.
"""

from onecard_load.shapes import MealRushShape
from onecard_load.users import CanteenPos, GateReader

__all__ = ["CanteenUser", "GateUser", "MealRushShape"]


class CanteenUser(CanteenPos):
    weight = round(100 * MealRushShape.profile.canteen_share)


class GateUser(GateReader):
    weight = 100 - round(100 * MealRushShape.profile.canteen_share)
