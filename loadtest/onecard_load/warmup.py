"""`--warmup-seconds`: Locust's statistics start over once the test has warmed up.

Locust's own `--reset-stats` resets when the last user has spawned, which is when every user has just
opened its channel and made its first tap: the burst of connections and first calls then lands in the
figures. A warm-up of a few seconds leaves it out. In a distributed run the master and every worker reset
their own statistics, each that long after its own test start.
"""

from __future__ import annotations

import logging
from typing import Any

import gevent  # type: ignore[import-untyped]  # gevent ships no type hints
from locust.env import Environment

from onecard_load.options import LoadOptions

__all__ = ["RESET_MESSAGE", "schedule_reset"]

RESET_MESSAGE = "Resetting stats after the warm-up"  # headless.py measures CPU from this log line
_log = logging.getLogger(__name__)


def _reset(environment: Environment) -> None:
    if environment.runner is not None:
        _log.info(RESET_MESSAGE)
        environment.runner.stats.reset_all()


def schedule_reset(environment: Environment, **_: Any) -> None:
    """A `test_start` listener (`users.py` adds it): resets the statistics after `--warmup-seconds`."""
    seconds = LoadOptions.of(environment).warmup_seconds
    if seconds > 0:
        gevent.spawn_later(seconds, _reset, environment)
