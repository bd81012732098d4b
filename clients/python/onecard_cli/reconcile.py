"""`onecard reconcile --date D`: the daily reconciliation (对账) against the banks' files."""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(commands: Any) -> None:
    parser = commands.add_parser("reconcile", help="daily reconciliation with the banks (not yet)")
    parser.add_argument("--date", default="", help="business date, YYYY-MM-DD")
    parser.set_defaults(run_without_hub=_reconcile)


def _reconcile(args: argparse.Namespace) -> int:
    print(
        "onecard reconcile: reconciliation (对账) against the banks' files comes with the bank work "
        "(issue 5); nothing was done.",
        file=sys.stderr,
    )
    return 2
