"""The hub's side of the co-branded banks: `BankGateway`, the one way the hub calls a bank."""

from onecard_hub.bank.gateway import BankGateway

__all__ = ["BankGateway"]
