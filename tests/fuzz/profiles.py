"""The fuzz suite's Hypothesis profiles.

- `onecard-fuzz-quick`, the default (`make test`): `QUICK_EXAMPLES` examples per RPC, derandomized (the
  same examples every run) and without an example database, so the normal suite stays repeatable.
- `onecard-fuzz` (`make fuzz`, i.e. `pytest tests/fuzz --hypothesis-profile=onecard-fuzz`):
  `ONECARD_FUZZ_MESSAGES` messages in all (default 100,000), spread evenly over the RPCs; random,
  and a failing example is kept in `.hypothesis/` (ignored by git) and tried first on the next run.
"""

from __future__ import annotations

import math
import os

from hypothesis import HealthCheck, settings

from tests.fuzz.calls import hub_rpcs

QUICK, LONG = "onecard-fuzz-quick", "onecard-fuzz"
QUICK_EXAMPLES = 6
DEFAULT_MESSAGES = 100_000
# One hub serves every example of an RPC (that is the point: state builds up), and an example may
# be a huge message: these health checks do not apply.
_UNCHECKED = [
    HealthCheck.function_scoped_fixture,
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.large_base_example,
]


def messages_per_rpc() -> int:
    total = int(os.environ.get("ONECARD_FUZZ_MESSAGES", DEFAULT_MESSAGES))
    return max(1, math.ceil(total / len(hub_rpcs())))


settings.register_profile(
    QUICK,
    max_examples=QUICK_EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=_UNCHECKED,
)
settings.register_profile(
    LONG, max_examples=messages_per_rpc(), deadline=None, suppress_health_check=_UNCHECKED, print_blob=True
)


def fuzz_settings() -> settings:
    """The profile loaded with --hypothesis-profile when it is one of these, else the quick one."""
    current = settings.get_current_profile_name()
    return settings.get_profile(current if current in (QUICK, LONG) else QUICK)
