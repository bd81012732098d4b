"""Which parts `bank-outage` drives are built: the bank simulator, the hub's `--bank`, top-ups (圈存),
grants (奖助学金) and reconciliation (对账). A scenario whose parts are missing says which and exits 2
(`catalog.NOT_BUILT`) rather than pretend.

Cheap: it looks the parts up without starting anything (the CLI asks at start-up).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util

__all__ = ["BANK_SIM_MODULE", "missing_bank_parts"]

BANK_SIM_MODULE = "onecard_sim.bank"
# (module, name, what it is) — every one the scenario calls.
_PARTS = (
    (BANK_SIM_MODULE, "running_bank", "the bank simulator (onecard-sim bank)"),
    (BANK_SIM_MODULE, "BankSimClient", "the bank simulator's client (balances, faults)"),
    ("onecard_client", "FundsClient", "top-ups (圈存) in the hub (FundsClient)"),
    ("onecard_client", "GrantsClient", "grant batches (奖助学金) in the hub (GrantsClient)"),
    ("onecard_client", "SettlementClient", "reconciliation (对账) in the hub (SettlementClient)"),
)


def missing_bank_parts() -> list[str]:
    """What is not built yet, one phrase each; empty when the scenario can run."""
    missing = [what for module, name, what in _PARTS if not _has(module, name)]
    if not _hub_takes_bank():
        missing.append("the hub's --bank HOST:PORT (HubConfig.bank)")
    return missing


def _has(module: str, name: str) -> bool:
    try:
        if importlib.util.find_spec(module) is None:
            return False
        return hasattr(importlib.import_module(module), name)
    except ImportError:
        return False


def _hub_takes_bank() -> bool:
    try:
        from onecard_hub.config import HubConfig
    except ImportError:
        return False
    return "bank" in {f.name for f in dataclasses.fields(HubConfig)}
