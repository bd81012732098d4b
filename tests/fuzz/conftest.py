"""Registers the fuzz profiles early enough for `--hypothesis-profile` (when tests/fuzz is named on the
command line) and, after a `make fuzz` run, prints what it sent and got back."""

from __future__ import annotations

import pytest
from hypothesis import settings

from tests.fuzz.calls import TALLY
from tests.fuzz.profiles import LONG


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if settings.get_current_profile_name() == LONG or terminalreporter.config.option.verbose > 0:
        for line in TALLY.lines():
            terminalreporter.write_line(line)
