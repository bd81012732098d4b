"""Steady load on the authorization path: `-u USERS -r RATE -t TIME`, each user `--user-rate` taps/s.

The benchmark's mix: 60% canteen purchases, 40% gate taps; half chip taps, half e-card QR
scans. Use it to find a steady rate, or with `--user-rate 0` (no pauses) to find a ceiling.

    .venv/bin/locust -f loadtest/locustfile.py --host 127.0.0.1:50051 --keys loadtest/data/hub.keys

See loadtest/README.md.
"""

from onecard_load.profiles import STEADY_CANTEEN_SHARE
from onecard_load.users import CanteenPos, GateReader


class CanteenUser(CanteenPos):
    weight = round(100 * STEADY_CANTEEN_SHARE)


class GateUser(GateReader):
    weight = 100 - round(100 * STEADY_CANTEEN_SHARE)
