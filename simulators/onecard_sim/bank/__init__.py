"""The co-branded banks simulator (`onecard-sim bank`): accounts linked to social security cards and
canteen merchants, debits (top-up 圈存), credits (grants, refunds, settlement), reversals (冲正),
inquiry and the daily statement (对账单), durable in SQLite, with fault injection (latency, errors,
timeouts, dropped replies, outages)."""

from onecard_sim.bank.client import BankSimClient
from onecard_sim.bank.faults import FaultPlan
from onecard_sim.bank.server import RunningBank, running_bank

__all__ = ["BankSimClient", "FaultPlan", "RunningBank", "running_bank"]
